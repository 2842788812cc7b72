package boltstore

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketThrottle holds the last time an event happened per key, for rate
// limits that must survive a restart (e.g. at most one confirmation email
// per address per day). It is created on first use, so files written
// before it existed need no migration.
var bucketThrottle = []byte("throttle")

// Allow records that the event key happened at `at` and reports true,
// unless it already happened less than `within` before at: then it records
// nothing and reports false. Callers should pass a key that does not hold
// personal data in clear (e.g. a hash of an address).
func (s *Store) Allow(key string, at time.Time, within time.Duration) (bool, error) {
	allowed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketThrottle)
		if err != nil {
			return fmt.Errorf("boltstore: throttle bucket: %w", err)
		}
		if v := b.Get([]byte(key)); len(v) == 8 {
			last := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			if at.Sub(last) < within {
				return nil
			}
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(at.UnixNano()))
		allowed = true
		return b.Put([]byte(key), v[:])
	})
	if err != nil {
		return false, fmt.Errorf("boltstore: throttle %s: %w", key, err)
	}
	return allowed, nil
}

// Forget removes the throttle record of key, if any.
func (s *Store) Forget(key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketThrottle)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
}
