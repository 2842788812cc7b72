package boltstore

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"newsdigest/subscribers"
)

// PutList creates or replaces the list l.Name after checking it with
// l.Validate. A zero Created is set to the existing list's Created, or to
// the clock's now for a new list.
func (s *Store) PutList(l subscribers.List) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("boltstore: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLists)
		if l.Created.IsZero() {
			var old subscribers.List
			found, err := getJSON(b, []byte(l.Name), &old)
			if err != nil {
				return err
			}
			if found && !old.Created.IsZero() {
				l.Created = old.Created
			} else {
				l.Created = s.now()
			}
		}
		return putJSON(b, []byte(l.Name), l)
	})
	if err != nil {
		return fmt.Errorf("boltstore: put list %s: %w", l.Name, err)
	}
	return nil
}

// GetList returns the list called name, or an error wrapping ErrNotFound.
func (s *Store) GetList(name string) (subscribers.List, error) {
	var l subscribers.List
	err := s.db.View(func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketLists), []byte(name), &l)
		if err == nil && !found {
			err = notFound("list %q", name)
		}
		return err
	})
	return l, err
}

// Lists returns every list, ordered by name.
func (s *Store) Lists() ([]subscribers.List, error) {
	var out []subscribers.List
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLists).ForEach(func(k, _ []byte) error {
			var l subscribers.List
			if _, err := getJSON(tx.Bucket(bucketLists), k, &l); err != nil {
				return err
			}
			out = append(out, l)
			return nil
		})
	})
	return out, err
}

// DeleteList removes the list called name and, in the same transaction,
// drops it from every subscriber's memberships (setting their Updated). It
// returns an error wrapping ErrNotFound when there is no such list. Editions
// and their ledgers are history and stay.
func (s *Store) DeleteList(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		lists := tx.Bucket(bucketLists)
		if lists.Get([]byte(name)) == nil {
			return notFound("list %q", name)
		}
		if err := lists.Delete([]byte(name)); err != nil {
			return fmt.Errorf("boltstore: delete list %s: %w", name, err)
		}
		// Collect first: bbolt cursors are not stable across writes.
		subs := tx.Bucket(bucketSubscribers)
		var changed []subscribers.Subscriber
		needle := jsonKey(name) // the membership's key in the JSON
		err := subs.ForEach(func(k, v []byte) error {
			if !bytes.Contains(v, needle) {
				return nil
			}
			var sub subscribers.Subscriber
			if _, err := getJSON(subs, k, &sub); err != nil {
				return err
			}
			if _, ok := sub.Lists[name]; ok {
				delete(sub.Lists, name)
				changed = append(changed, sub)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("boltstore: delete list %s: %w", name, err)
		}
		now := s.now()
		for _, sub := range changed {
			sub.Updated = now
			if err := putJSON(subs, []byte(sub.Email), sub); err != nil {
				return fmt.Errorf("boltstore: delete list %s from %s: %w", name, sub.Email, err)
			}
		}
		return nil
	})
}
