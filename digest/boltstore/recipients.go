package boltstore

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"newsdigest/subscribers"
)

// ConfirmedEmails returns a page of the addresses confirmed on list, in
// order, strictly after after, at most limit (0 = all). A sender pages
// through them so that no read transaction stays open while mail goes out.
//
// It reads of each record only its address and its membership of list
// (see matchSubscriber).
func (s *Store) ConfirmedEmails(list, after string, limit int) ([]string, error) {
	q := SubscriberQuery{List: list, Status: subscribers.Confirmed, After: after, Limit: limit}
	out := []string{}
	err := s.walkSubscribers(q, func(k, v []byte, exact func(subscribers.Subscriber) bool) (bool, error) {
		email, ok, err := matchSubscriber(k, v, q, exact)
		if ok {
			out = append(out, email)
		}
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var keySecret = []byte("secret")

// Secret returns the database's own 32-byte HMAC secret, creating it on
// first use. It signs tokens when the configuration sets no secret, so that
// links in sent emails stay valid across restarts; it travels with backups.
func (s *Store) Secret() ([]byte, error) {
	var secret []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySecret); v != nil {
			secret = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil || secret != nil {
		return secret, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if v := b.Get(keySecret); v != nil {
			secret = append([]byte(nil), v...)
			return nil
		}
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		return b.Put(keySecret, secret)
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: %s: secret: %w", s.path, err)
	}
	return secret, nil
}

// editionListCache holds the list of the edition editionList read last
// and the record it was decoded from: a send reads its edition once per
// page of recipients.
type editionListCache struct {
	mu   sync.Mutex
	id   string
	raw  []byte
	list string
}

// editionList returns the list of edition id as getEdition would read
// it, with getEdition's errors, decoding the record only when it is not
// the one read last.
func (s *Store) editionList(tx *bolt.Tx, id string) (string, error) {
	raw := tx.Bucket(bucketEditions).Get([]byte(id))
	if raw == nil {
		return "", notFound("edition %q", id)
	}
	c := &s.lastEdition
	c.mu.Lock()
	list, ok := c.list, c.id == id && bytes.Equal(c.raw, raw)
	c.mu.Unlock()
	if ok {
		// The record decodes as before; its counters are read as
		// getEdition reads them.
		if _, _, err := getCounts(tx, id); err != nil {
			return "", err
		}
		return list, nil
	}
	e, err := decodeEdition(tx, id, raw)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.id, c.raw, c.list = id, append(c.raw[:0], raw...), e.List
	c.mu.Unlock()
	return e.List, nil
}
