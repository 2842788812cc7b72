package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/subscribers"
)

// bucketEvents holds bounce and complaint events per subscriber, keyed by
// normalized email, a 0 byte and an 8-byte big-endian sequence number, so
// that one address's events are contiguous and in the order recorded. It
// is created on first use, so files written before it existed need no
// migration.
var bucketEvents = []byte("events")

// MaxEventsPerSubscriber bounds the history kept per address; the oldest
// events are dropped first.
const MaxEventsPerSubscriber = 100

func eventPrefix(norm string) []byte { return append([]byte(norm), 0) }

// RecordEvent appends ev to the history of email (normalized first). A
// zero ev.At means the clock's now.
func (s *Store) RecordEvent(email string, ev subscribers.Event) error {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("boltstore: record event: %w", err)
	}
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("boltstore: record event for %s: %w", norm, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketEvents)
		if err != nil {
			return fmt.Errorf("boltstore: events bucket: %w", err)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		prefix := eventPrefix(norm)
		key := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), seq)
		if err := b.Put(key, raw); err != nil {
			return fmt.Errorf("boltstore: record event for %s: %w", norm, err)
		}
		// Drop the oldest beyond the cap.
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for i := 0; i < len(keys)-MaxEventsPerSubscriber; i++ {
			if err := b.Delete(keys[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Events returns the recorded events of email (normalized first), oldest
// first; none is not an error.
func (s *Store) Events(email string) ([]subscribers.Event, error) {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return nil, fmt.Errorf("boltstore: events: %w", err)
	}
	var out []subscribers.Event
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return nil
		}
		prefix := eventPrefix(norm)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var ev subscribers.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("boltstore: decode event %q: %w", k, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// CountEvents returns how many events of kind email has had at or after
// since.
func (s *Store) CountEvents(email string, kind subscribers.EventKind, since time.Time) (int, error) {
	evs, err := s.Events(email)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind && !ev.At.Before(since) {
			n++
		}
	}
	return n, nil
}

// DeleteEvents removes every event of email (normalized first), e.g. when
// the subscriber's data is deleted.
func (s *Store) DeleteEvents(email string) error {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("boltstore: delete events: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error { return deleteEvents(tx, norm) })
}

// deleteEvents removes every event of the normalized address norm.
func deleteEvents(tx *bolt.Tx, norm string) error {
	b := tx.Bucket(bucketEvents)
	if b == nil {
		return nil
	}
	prefix := eventPrefix(norm)
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// MarkSubscriber sets the status of email on each of lists (every list the
// subscriber is confirmed or pending on, when lists is empty) to st, in one
// transaction, leaving unsubscribed, bounced and complained memberships as
// they are. It returns the lists it changed; a subscriber that does not
// exist is an error wrapping ErrNotFound.
func (s *Store) MarkSubscriber(email string, lists []string, st subscribers.Status, at time.Time) ([]string, error) {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return nil, fmt.Errorf("boltstore: mark subscriber: %w", err)
	}
	if !st.Valid() {
		return nil, fmt.Errorf("boltstore: mark subscriber %s: unknown status %q", norm, st)
	}
	if at.IsZero() {
		at = s.now()
	}
	var changed []string
	err = s.db.Update(func(tx *bolt.Tx) error {
		sub, found, err := getSubscriber(tx, norm)
		if err != nil {
			return err
		}
		if !found {
			return notFound("subscriber %s", norm)
		}
		old := sub
		old.Lists = nil
		targets := lists
		if len(targets) == 0 {
			for name := range sub.Lists {
				targets = append(targets, name)
			}
			slices.Sort(targets)
		}
		next := make(map[string]subscribers.Membership, len(sub.Lists))
		for k, v := range sub.Lists {
			next[k] = v
		}
		sub.Lists = next
		for _, name := range targets {
			cur := sub.StatusOn(name)
			if cur != subscribers.Confirmed && cur != subscribers.Pending {
				continue
			}
			sub.SetStatus(name, st, at)
			changed = append(changed, name)
		}
		if len(changed) == 0 {
			return nil
		}
		return s.saveSubscriber(tx, sub, &old, s.now())
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}
