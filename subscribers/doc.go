// Package subscribers holds the people newsdigest mails and the lists
// (newsletters) they subscribe to: their types, address normalization,
// signed tokens, and CSV/JSON import and export. It has no dependency on
// package digest and performs no storage I/O.
package subscribers
