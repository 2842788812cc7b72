package boltstore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/subscribers"
)

// SubscriberQuery selects a page of subscribers for Subscribers.
type SubscriberQuery struct {
	// List keeps only members of this list (any status unless Status is
	// set). Empty means every subscriber.
	List string
	// Status keeps only this status: on List when List is set, on any
	// list otherwise. Empty means any status.
	Status subscribers.Status
	// After is the normalized email of the last subscriber of the
	// previous page: results start strictly after it. Empty starts at the
	// beginning.
	After string
	// Limit is the largest number of results; 0 means no limit.
	Limit int
}

var subscriberIDPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// validateSubscriber checks the fields the store relies on. sub.Email must
// already be normalized.
func validateSubscriber(sub subscribers.Subscriber) error {
	if sub.ID != "" && !subscriberIDPattern.MatchString(sub.ID) {
		return fmt.Errorf("boltstore: subscriber %s: id %q: use 1–64 letters, digits, '-' or '_'", sub.Email, sub.ID)
	}
	for name, m := range sub.Lists {
		if name == "" {
			return fmt.Errorf("boltstore: subscriber %s: membership with an empty list name", sub.Email)
		}
		if !m.Status.Valid() {
			return fmt.Errorf("boltstore: subscriber %s: list %s: unknown status %q", sub.Email, name, m.Status)
		}
	}
	if sub.SendHour < -1 || sub.SendHour > 23 {
		return fmt.Errorf("boltstore: subscriber %s: send hour %d: want 0–23, or -1 for the list's schedule", sub.Email, sub.SendHour)
	}
	switch sub.Frequency {
	case "", subscribers.Daily, subscribers.Weekly:
	default:
		return fmt.Errorf("boltstore: subscriber %s: frequency %q: want %q or %q", sub.Email, sub.Frequency, subscribers.Daily, subscribers.Weekly)
	}
	return nil
}

// normalizeSubscriber normalizes sub.Email and validates sub.
func normalizeSubscriber(sub subscribers.Subscriber) (subscribers.Subscriber, error) {
	email, err := subscribers.NormalizeEmail(sub.Email)
	if err != nil {
		return sub, fmt.Errorf("boltstore: subscriber: %w", err)
	}
	sub.Email = email
	return sub, validateSubscriber(sub)
}

func getSubscriber(tx *bolt.Tx, email string) (subscribers.Subscriber, bool, error) {
	key := []byte(email)
	raw := tx.Bucket(bucketSubscribers).Get(key)
	if raw == nil {
		return subscribers.Subscriber{}, false, nil
	}
	sub, err := readSubscriber(key, raw, &readAll)
	return sub, true, err
}

// newSubscriberID returns a random ID not yet in use.
func newSubscriberID(ids *bolt.Bucket) (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("boltstore: subscriber id: %w", err)
		}
		id := hex.EncodeToString(b[:])
		if ids.Get([]byte(id)) == nil {
			return id, nil
		}
	}
}

// saveSubscriber writes sub (normalized and validated) and its ID index
// entry. old is the record stored under sub.Email, if any. It assigns an ID
// when sub has none, stamps Created when zero, Since of new memberships
// when zero, and Updated.
func (s *Store) saveSubscriber(tx *bolt.Tx, sub subscribers.Subscriber, old *subscribers.Subscriber, now time.Time) error {
	ids := tx.Bucket(bucketSubscriberIDs)
	if sub.ID == "" {
		id, err := newSubscriberID(ids)
		if err != nil {
			return err
		}
		sub.ID = id
	} else if owner := ids.Get([]byte(sub.ID)); owner != nil && string(owner) != sub.Email {
		return wrapf(ErrExists, "boltstore: subscriber id %s already belongs to %s, not %s", sub.ID, owner, sub.Email)
	}
	if old != nil && old.ID != "" && old.ID != sub.ID {
		if err := ids.Delete([]byte(old.ID)); err != nil {
			return fmt.Errorf("boltstore: subscriber %s: drop old id: %w", sub.Email, err)
		}
	}
	if sub.Created.IsZero() {
		sub.Created = now
	}
	sub.Updated = now
	sub.Lists = maps.Clone(sub.Lists) // the caller's map stays as it was
	for name, m := range sub.Lists {
		if m.Since.IsZero() {
			m.Since = now
			sub.Lists[name] = m
		}
	}
	if err := ids.Put([]byte(sub.ID), []byte(sub.Email)); err != nil {
		return fmt.Errorf("boltstore: subscriber %s: index id: %w", sub.Email, err)
	}
	if err := putJSON(tx.Bucket(bucketSubscribers), []byte(sub.Email), sub); err != nil {
		return fmt.Errorf("boltstore: subscriber %s: %w", sub.Email, err)
	}
	return nil
}

// GetSubscriber returns the subscriber with the given address (normalized
// first), or an error wrapping ErrNotFound, or subscribers.ErrInvalidEmail
// when email is not an address.
func (s *Store) GetSubscriber(email string) (subscribers.Subscriber, error) {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return subscribers.Subscriber{}, fmt.Errorf("boltstore: get subscriber: %w", err)
	}
	var sub subscribers.Subscriber
	err = s.db.View(func(tx *bolt.Tx) error {
		var found bool
		var err error
		sub, found, err = getSubscriber(tx, norm)
		if err == nil && !found {
			err = notFound("subscriber %s", norm)
		}
		return err
	})
	return sub, err
}

// GetSubscriberByID returns the subscriber whose ID is id, or an error
// wrapping ErrNotFound.
func (s *Store) GetSubscriberByID(id string) (subscribers.Subscriber, error) {
	var sub subscribers.Subscriber
	err := s.db.View(func(tx *bolt.Tx) error {
		email := tx.Bucket(bucketSubscriberIDs).Get([]byte(id))
		if email == nil {
			return notFound("subscriber with id %q", id)
		}
		var found bool
		var err error
		sub, found, err = getSubscriber(tx, string(email))
		if err == nil && !found {
			return fmt.Errorf("boltstore: subscriber id %s points to %s, which is missing: run a check", id, email)
		}
		return err
	})
	return sub, err
}

// PutSubscriber creates or replaces the subscriber with sub's (normalized)
// address. An empty ID keeps the stored one, or gets a new random one; a
// zero Created keeps the stored one, or is set to now; Updated is set to
// now, as is Since of memberships that have none. A given ID that belongs
// to another address is refused with an error wrapping ErrExists.
func (s *Store) PutSubscriber(sub subscribers.Subscriber) error {
	sub, err := normalizeSubscriber(sub)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		old, found, err := getSubscriber(tx, sub.Email)
		if err != nil {
			return err
		}
		var oldp *subscribers.Subscriber
		if found {
			oldp = &old
			if sub.ID == "" {
				sub.ID = old.ID
			}
			if sub.Created.IsZero() {
				sub.Created = old.Created
			}
		}
		return s.saveSubscriber(tx, sub, oldp, s.now())
	})
}

// AddSubscriber creates a subscriber like PutSubscriber, but fails with an
// error wrapping ErrExists when the address is already stored.
func (s *Store) AddSubscriber(sub subscribers.Subscriber) error {
	sub, err := normalizeSubscriber(sub)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSubscribers).Get([]byte(sub.Email)) != nil {
			return wrapf(ErrExists, "boltstore: subscriber %s already exists", sub.Email)
		}
		return s.saveSubscriber(tx, sub, nil, s.now())
	})
}

// UpsertSubscribers stores a batch in one transaction: all of it or, on
// error, none of it. New addresses are added. An address already stored
// (or seen earlier in the batch) is merged when update is true (see
// MergeSubscriber) and left as it is otherwise. skipped counts the
// subscribers left as they were: existing ones when update is false, and
// those the merge did not change. Invalid entries fail the batch with an
// error naming their position.
func (s *Store) UpsertSubscribers(batch []subscribers.Row, update bool) (added, updated, skipped int, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		added, updated, skipped = 0, 0, 0
		now := s.now()
		for i, row := range batch {
			in := row.Subscriber
			in, err := normalizeSubscriber(in)
			if err != nil {
				return fmt.Errorf("boltstore: batch entry %d: %w", i+1, err)
			}
			old, found, err := getSubscriber(tx, in.Email)
			if err != nil {
				return err
			}
			if !found {
				if err := s.saveSubscriber(tx, in, nil, now); err != nil {
					return fmt.Errorf("boltstore: batch entry %d: %w", i+1, err)
				}
				added++
				continue
			}
			if !update {
				skipped++
				continue
			}
			merged := MergeSubscriber(old, in, row.Given, now)
			if reflect.DeepEqual(merged, old) {
				skipped++
				continue
			}
			if err := s.saveSubscriber(tx, merged, &old, now); err != nil {
				return fmt.Errorf("boltstore: batch entry %d: %w", i+1, err)
			}
			updated++
		}
		return nil
	})
	if err != nil {
		return 0, 0, 0, err
	}
	return added, updated, skipped, nil
}

// MergeSubscriber folds an incoming copy of a subscriber (an import row)
// into the stored one and returns the result; neither argument is changed.
// given says which fields the incoming row actually carried (see
// subscribers.Row.Given): only those replace stored values, so a file
// without a send_hour column leaves every stored hour alone. ID, Email,
// Created and Updated are kept. Attrs are merged, incoming values winning.
//
// Memberships: an import never re-subscribes someone who unsubscribed,
// bounced or complained on a list, whatever the row says (an old export
// must not undo a later unsubscribe). Otherwise a status the row gave
// explicitly (a status column) wins, and a status that only comes from the
// import's options (--list L) adds the subscriber to lists they are not on
// and upgrades pending to confirmed. A membership whose status does not
// change keeps its Since.
func MergeSubscriber(old, in subscribers.Subscriber, given subscribers.Fields, now time.Time) subscribers.Subscriber {
	out := old
	if given.Has(subscribers.GivenName) {
		out.Name = in.Name
	}
	if given.Has(subscribers.GivenTimezone) {
		out.Timezone = in.Timezone
	}
	if given.Has(subscribers.GivenFrequency) {
		out.Frequency = in.Frequency
	}
	if given.Has(subscribers.GivenSendHour) {
		out.SendHour = in.SendHour
	}
	if given.Has(subscribers.GivenTopics) {
		out.Topics = slices.Clone(in.Topics)
	}
	if given.Has(subscribers.GivenConsent) {
		out.Consent = in.Consent
	}
	if len(in.Lists) > 0 {
		out.Lists = maps.Clone(old.Lists)
		if out.Lists == nil {
			out.Lists = make(map[string]subscribers.Membership, len(in.Lists))
		}
		for name, m := range in.Lists {
			prev, ok := out.Lists[name]
			if ok && prev.Status == m.Status {
				continue
			}
			if ok && left(prev.Status) && !left(m.Status) {
				continue
			}
			if ok && !given.Has(subscribers.GivenStatus) &&
				!(prev.Status == subscribers.Pending && m.Status == subscribers.Confirmed) {
				continue
			}
			if m.Since.IsZero() {
				m.Since = now
			}
			out.Lists[name] = m
		}
	}
	if len(in.Attrs) > 0 {
		out.Attrs = maps.Clone(old.Attrs)
		if out.Attrs == nil {
			out.Attrs = make(map[string]string, len(in.Attrs))
		}
		maps.Copy(out.Attrs, in.Attrs)
	}
	return out
}

// DeleteSubscriber removes the subscriber with the given address, its
// index entries, its story history and its bounce and complaint events, or returns an error
// wrapping ErrNotFound. Delivery records of past editions stay, as history
// of what was sent.
func (s *Store) DeleteSubscriber(email string) error {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("boltstore: delete subscriber: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		sub, found, err := getSubscriber(tx, norm)
		if err != nil {
			return err
		}
		if !found {
			return notFound("subscriber %s", norm)
		}
		if sub.ID != "" {
			if err := tx.Bucket(bucketSubscriberIDs).Delete([]byte(sub.ID)); err != nil {
				return fmt.Errorf("boltstore: delete subscriber %s: %w", norm, err)
			}
		}
		if err := tx.Bucket(bucketSubscribers).Delete([]byte(norm)); err != nil {
			return fmt.Errorf("boltstore: delete subscriber %s: %w", norm, err)
		}
		// Their story history and their bounce and complaint events go
		// with them.
		if b := tx.Bucket(bucketHistory); b != nil {
			if err := b.Delete([]byte(norm)); err != nil {
				return fmt.Errorf("boltstore: delete subscriber %s: %w", norm, err)
			}
		}
		return deleteEvents(tx, norm)
	})
}

// subscriberFilter returns a quick byte test (a superset of the matches,
// to skip decoding) and the exact test for q.
func subscriberFilter(q SubscriberQuery) (func([]byte) bool, func(subscribers.Subscriber) bool, error) {
	if q.Status != "" && !q.Status.Valid() {
		return nil, nil, fmt.Errorf("boltstore: unknown subscriber status %q", q.Status)
	}
	quick := func([]byte) bool { return true }
	if q.List != "" {
		needle := jsonKey(q.List)
		quick = func(v []byte) bool { return bytes.Contains(v, needle) }
	}
	exact := func(sub subscribers.Subscriber) bool {
		if q.List != "" {
			m, ok := sub.Lists[q.List]
			return ok && (q.Status == "" || m.Status == q.Status)
		}
		if q.Status == "" {
			return true
		}
		for _, m := range sub.Lists {
			if m.Status == q.Status {
				return true
			}
		}
		return false
	}
	return quick, exact, nil
}

// Subscribers returns the subscribers that q selects, in email order: at
// most q.Limit of them, strictly after q.After. To walk every match, call
// it again with After set to the last email returned until it returns fewer
// than Limit; no transaction stays open between calls.
func (s *Store) Subscribers(q SubscriberQuery) ([]subscribers.Subscriber, error) {
	var out []subscribers.Subscriber
	err := s.walkSubscribers(q, func(k, v []byte, exact func(subscribers.Subscriber) bool) (bool, error) {
		sub, err := readSubscriber(k, v, &readAll)
		if err != nil || !exact(sub) {
			return false, err
		}
		out = append(out, sub)
		return true, nil
	})
	return out, err
}

// walkSubscribers calls fn, in one read transaction, with each record
// that q's quick test lets through, in email order, from q.After on, and
// q's exact test, until fn has matched q.Limit of them (fn returns
// whether the record matched).
func (s *Store) walkSubscribers(q SubscriberQuery, fn func(k, v []byte, exact func(subscribers.Subscriber) bool) (bool, error)) error {
	if q.Limit < 0 {
		return fmt.Errorf("boltstore: subscribers: negative limit %d", q.Limit)
	}
	quick, exact, err := subscriberFilter(q)
	if err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSubscribers).Cursor()
		k, v := c.First()
		if q.After != "" {
			k, v = c.Seek([]byte(q.After))
			if k != nil && string(k) == q.After {
				k, v = c.Next()
			}
		}
		n := 0
		for ; k != nil; k, v = c.Next() {
			if !quick(v) {
				continue
			}
			ok, err := fn(k, v, exact)
			if err != nil {
				return err
			}
			if ok {
				n++
				if q.Limit > 0 && n == q.Limit {
					break
				}
			}
		}
		return nil
	})
}

// matchSubscriber reports whether the record raw, stored under key, is
// one that q selects (exact is q's exact test) and returns its address.
// When q names a list, it reads only the record's address and membership
// of that list.
func matchSubscriber(key, raw []byte, q SubscriberQuery, exact func(subscribers.Subscriber) bool) (string, bool, error) {
	if q.List != "" {
		var d subDecoder
		var none subscribers.Subscriber // nothing is filled
		r := subRead{list: q.List}
		if d.decode(raw, &r, &none) && d.emailOK {
			if !d.onList || q.Status != "" && d.member.Status != q.Status {
				return "", false, nil
			}
			return string(d.email), true, nil
		}
	}
	sub, err := readSubscriber(key, raw, &readAll)
	if err != nil || !exact(sub) {
		return "", false, err
	}
	return sub.Email, true, nil
}

// CountSubscribers counts the subscribers on list (any list when empty)
// with status (any status when empty), with the same meaning as the List
// and Status of a SubscriberQuery.
func (s *Store) CountSubscribers(list string, status subscribers.Status) (int, error) {
	if list == "" && status == "" {
		n := 0
		err := s.db.View(func(tx *bolt.Tx) error {
			n = tx.Bucket(bucketSubscribers).Stats().KeyN
			return nil
		})
		return n, err
	}
	q := SubscriberQuery{List: list, Status: status}
	n := 0
	err := s.walkSubscribers(q, func(k, v []byte, exact func(subscribers.Subscriber) bool) (bool, error) {
		_, ok, err := matchSubscriber(k, v, q, exact)
		if ok {
			n++
		}
		return ok, err
	})
	return n, err
}

// left reports whether a status means the person left the list or must
// not be mailed: only they (or an admin, one by one) can undo it.
func left(st subscribers.Status) bool {
	return st == subscribers.Unsubscribed || st == subscribers.Bounced || st == subscribers.Complained
}
