package boltstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A seeker answers as Bucket.Get does, for present and absent keys,
// before and after the bucket is written in the same transaction, and for
// a key that names a nested bucket.
func TestSeekerGetsAsBucketGet(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	key := func() []byte { return fmt.Appendf(nil, "k%04d", rng.IntN(3000)) }
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		if _, err := b.CreateBucket([]byte("k0500")); err != nil {
			return err
		}
		s := newSeeker(b)
		for i := range 20000 {
			k := key()
			switch i % 3 {
			case 0:
				b.Put(k, fmt.Appendf(nil, "v%d", i))
			case 1:
				b.Delete(k)
			}
			if got, want := s.Get(k), b.Get(k); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				return fmt.Errorf("step %d, %s: seeker %q, bucket %q", i, k, got, want)
			}
		}
		if s.Get([]byte("k0500")) != nil || s.Get([]byte("zzz")) != nil || s.Get([]byte("")) != nil {
			return fmt.Errorf("a nested bucket, a key past the end or an empty key gave a value")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
