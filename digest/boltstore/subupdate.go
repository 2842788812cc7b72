package boltstore

import (
	"fmt"
	"reflect"

	bolt "go.etcd.io/bbolt"

	"newsdigest/subscribers"
)

// UpdateSubscriber applies fn to the subscriber with the given address
// (normalized first) and stores the result, in one transaction: fn always
// sees the latest record, so nothing another writer committed before it
// (an admin adding a list, a bounce marking the address, a second request)
// is lost, and nobody writes between fn's read and its write.
//
// An error from fn is returned and nothing is written; a record that fn
// leaves as it was is not written either (Updated stays). fn must not
// change the ID or the address, and must not call the Store: it runs
// inside the write transaction. The result is validated and stamped like
// PutSubscriber's (Updated, Since of new memberships). It returns the
// stored subscriber, or an error wrapping ErrNotFound, or
// subscribers.ErrInvalidEmail when email is not an address.
func (s *Store) UpdateSubscriber(email string, fn func(*subscribers.Subscriber) error) (subscribers.Subscriber, error) {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return subscribers.Subscriber{}, fmt.Errorf("boltstore: update subscriber: %w", err)
	}
	var out subscribers.Subscriber
	err = s.db.Update(func(tx *bolt.Tx) error {
		var err error
		out, err = s.updateSubscriber(tx, norm, fn)
		return err
	})
	if err != nil {
		return subscribers.Subscriber{}, err
	}
	return out, nil
}

// UpdateSubscriberByID is UpdateSubscriber for the subscriber whose ID is
// id (the subject of the subscriber pages' tokens).
func (s *Store) UpdateSubscriberByID(id string, fn func(*subscribers.Subscriber) error) (subscribers.Subscriber, error) {
	var out subscribers.Subscriber
	err := s.db.Update(func(tx *bolt.Tx) error {
		email := tx.Bucket(bucketSubscriberIDs).Get([]byte(id))
		if email == nil {
			return notFound("subscriber with id %q", id)
		}
		var err error
		out, err = s.updateSubscriber(tx, string(email), fn)
		return err
	})
	if err != nil {
		return subscribers.Subscriber{}, err
	}
	return out, nil
}

// updateSubscriber is the transaction of UpdateSubscriber for the stored
// (normalized) address norm.
func (s *Store) updateSubscriber(tx *bolt.Tx, norm string, fn func(*subscribers.Subscriber) error) (subscribers.Subscriber, error) {
	old, found, err := getSubscriber(tx, norm)
	if err != nil {
		return old, err
	}
	if !found {
		return old, notFound("subscriber %s", norm)
	}
	// fn gets a copy of its own (decoded again: no map or slice shared
	// with old), so that old stays the stored record to compare with.
	sub, _, err := getSubscriber(tx, norm)
	if err != nil {
		return old, err
	}
	if err := fn(&sub); err != nil {
		return old, err
	}
	if sub.ID != old.ID || sub.Email != old.Email {
		return old, fmt.Errorf("boltstore: update subscriber %s: the ID and address cannot change (to %q, %q)", norm, sub.ID, sub.Email)
	}
	if reflect.DeepEqual(sub, old) {
		return old, nil
	}
	if err := validateSubscriber(sub); err != nil {
		return old, err
	}
	if sub.Created.IsZero() {
		sub.Created = old.Created
	}
	if err := s.saveSubscriber(tx, sub, &old, s.now()); err != nil {
		return old, err
	}
	saved, _, err := getSubscriber(tx, norm)
	return saved, err
}
