package boltstore

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// getter reads a key's value: a *bolt.Bucket or a seeker.
type getter interface {
	Get(key []byte) []byte
}

// seeker reads keys of one bucket through one reused cursor. Bucket.Get
// makes a new cursor, and grows its stack, on every call: in a send those
// lookups were the largest share of the allocations. Each Get positions
// the cursor anew, so writes to the bucket in between do not matter.
type seeker struct{ c *bolt.Cursor }

func newSeeker(b *bolt.Bucket) seeker { return seeker{b.Cursor()} }

// Get returns key's value as Bucket.Get does: nil when it is absent or
// names a nested bucket.
func (s seeker) Get(key []byte) []byte {
	k, v := s.c.Seek(key)
	if k == nil || !bytes.Equal(k, key) {
		return nil
	}
	return v
}
