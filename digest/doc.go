// Package digest holds newsdigest's domain: articles, the selection of
// stories for an edition, editions and their delivery records. It performs
// no I/O; implementations of storage, feeds, rendering and sending live in
// sub-packages named after what they depend on, and only cmd/ wires them.
package digest
