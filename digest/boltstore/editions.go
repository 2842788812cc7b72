package boltstore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

// maxEditionID is the longest edition ID the store accepts.
const maxEditionID = 256

// pendingMark is the value of keys in the pending buckets.
var pendingMark = []byte{}

// CreateEdition stores a new edition, with an empty delivery ledger. A zero
// Created is set to the clock's now and an empty Status to
// digest.EditionSending. If an edition with e.ID already exists it returns
// (false, nil) and changes nothing: building the same slot twice is
// harmless.
func (s *Store) CreateEdition(e digest.Edition) (created bool, err error) {
	if e.ID == "" || len(e.ID) > maxEditionID {
		return false, fmt.Errorf("boltstore: create edition: id must be 1–%d bytes, got %d", maxEditionID, len(e.ID))
	}
	if e.List == "" {
		return false, fmt.Errorf("boltstore: create edition %s: list is required", e.ID)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		created = false
		b := tx.Bucket(bucketEditions)
		if b.Get([]byte(e.ID)) != nil {
			return nil
		}
		if e.Created.IsZero() {
			e.Created = s.now()
		}
		if e.Status == "" {
			e.Status = digest.EditionSending
		}
		if err := putJSON(b, []byte(e.ID), e); err != nil {
			return fmt.Errorf("boltstore: create edition %s: %w", e.ID, err)
		}
		if err := putPool(tx, e.ID, e.Pool); err != nil {
			return err
		}
		if _, err := ledger(tx, e.ID); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return created, nil
}

// ledgerBuckets are an edition's delivery records and its queued subset.
type ledgerBuckets struct {
	records *bolt.Bucket // email -> digest.Delivery
	pending *bolt.Bucket // email -> pendingMark, for queued records only
}

// ledger returns the edition's ledger buckets, creating them when tx is
// writable and they are missing. In a read transaction, missing buckets
// come back nil.
func ledger(tx *bolt.Tx, editionID string) (ledgerBuckets, error) {
	key := []byte(editionID)
	lb := ledgerBuckets{
		records: tx.Bucket(bucketDeliveries).Bucket(key),
		pending: tx.Bucket(bucketPending).Bucket(key),
	}
	if !tx.Writable() {
		return lb, nil
	}
	var err error
	if lb.records == nil {
		if lb.records, err = tx.Bucket(bucketDeliveries).CreateBucket(key); err != nil {
			return lb, fmt.Errorf("boltstore: edition %s: create ledger: %w", editionID, err)
		}
	}
	if lb.pending == nil {
		if lb.pending, err = tx.Bucket(bucketPending).CreateBucket(key); err != nil {
			return lb, fmt.Errorf("boltstore: edition %s: create ledger: %w", editionID, err)
		}
	}
	// Ledger rows are queued and recorded in address order: pack pages
	// full instead of bbolt's half-full splits for random inserts.
	lb.records.FillPercent, lb.pending.FillPercent = sequentialFill, sequentialFill
	return lb, nil
}

// getEdition returns the edition record with its counters (not its pool),
// or an error wrapping ErrNotFound.
func getEdition(tx *bolt.Tx, id string) (digest.Edition, error) {
	raw := tx.Bucket(bucketEditions).Get([]byte(id))
	if raw == nil {
		return digest.Edition{}, notFound("edition %q", id)
	}
	return decodeEdition(tx, id, raw)
}

// GetEdition returns the edition with the given ID, with its pool, or an
// error wrapping ErrNotFound.
func (s *Store) GetEdition(id string) (digest.Edition, error) {
	var e digest.Edition
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if e, err = getEdition(tx, id); err != nil {
			return err
		}
		e.Pool, err = getPool(tx, id)
		return err
	})
	return e, err
}

// Editions returns the editions of list (of every list when list is
// empty), newest Created first; ties by ID, descending.
func (s *Store) Editions(list string) ([]digest.Edition, error) {
	var out []digest.Edition
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEditions)
		return b.ForEach(func(k, v []byte) error {
			e, err := decodeEdition(tx, string(k), v)
			if err != nil {
				return err
			}
			if list == "" || e.List == list {
				out = append(out, e)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(x, y digest.Edition) int {
		if c := y.Created.Compare(x.Created); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	return out, nil
}

// UpdateEdition applies fn to the edition with the given ID and stores the
// result in one transaction (pause, resume, intro...). An error from fn is
// returned and nothing is written; fn must not change the ID. It returns
// the stored edition, or an error wrapping ErrNotFound.
func (s *Store) UpdateEdition(id string, fn func(*digest.Edition) error) (digest.Edition, error) {
	var e digest.Edition
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if e, err = getEdition(tx, id); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
		if e.ID != id {
			return fmt.Errorf("boltstore: update edition %s: the ID cannot change (to %q)", id, e.ID)
		}
		return putEdition(tx, e)
	})
	if err != nil {
		return digest.Edition{}, err
	}
	return e, nil
}

// QueueDeliveries adds a queued delivery record for each address (normalized
// first) that the edition's ledger does not hold yet, in one transaction,
// and returns how many it added. Addresses already in the ledger, whatever
// their state, are skipped, so queueing the same recipients twice never
// sends twice. If records were added to an edition marked sent (recipients
// who became due later, as with local-time delivery), it goes back to
// sending. An invalid address fails the whole call.
func (s *Store) QueueDeliveries(editionID string, emails []string) (queued int, err error) {
	norms := make([]string, len(emails))
	for i, e := range emails {
		norm, err := subscribers.NormalizeEmail(e)
		if err != nil {
			return 0, fmt.Errorf("boltstore: queue deliveries of %s: %w", editionID, err)
		}
		norms[i] = norm
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		queued = 0
		e, err := getEdition(tx, editionID)
		if err != nil {
			return err
		}
		lb, err := ledger(tx, editionID)
		if err != nil {
			return err
		}
		now := s.now()
		for _, email := range norms {
			key := []byte(email)
			if lb.records.Get(key) != nil {
				continue
			}
			d := digest.Delivery{Edition: editionID, Email: email, Status: digest.DeliveryQueued, At: now}
			if err := putDelivery(lb.records, key, d); err != nil {
				return fmt.Errorf("boltstore: queue %s for %s: %w", email, editionID, err)
			}
			if err := lb.pending.Put(key, pendingMark); err != nil {
				return fmt.Errorf("boltstore: queue %s for %s: %w", email, editionID, err)
			}
			queued++
		}
		if queued > 0 && e.Status == digest.EditionSent {
			e.Status, e.Finished = digest.EditionSending, time.Time{}
			return putEdition(tx, e)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return queued, nil
}

// PendingDeliveries returns the edition's queued records in email order,
// strictly after the address after (empty: from the start), at most limit
// of them (0: all). It reads only the queued ones, however many records are
// final. It returns an error wrapping ErrNotFound for an unknown edition.
func (s *Store) PendingDeliveries(editionID, after string, limit int) ([]digest.Delivery, error) {
	if limit < 0 {
		return nil, fmt.Errorf("boltstore: pending deliveries of %s: negative limit %d", editionID, limit)
	}
	var out []digest.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		if _, err := getEdition(tx, editionID); err != nil {
			return err
		}
		return eachPending(tx, editionID, after, func(k []byte, d digest.Delivery) (bool, error) {
			out = append(out, d)
			return limit > 0 && len(out) == limit, nil
		})
	})
	return out, err
}

// eachPending calls fn with the edition's queued records in email order,
// strictly after the address after (empty: from the start), until fn says
// stop or returns an error.
func eachPending(tx *bolt.Tx, editionID, after string, fn func(k []byte, d digest.Delivery) (stop bool, err error)) error {
	lb, _ := ledger(tx, editionID)
	if lb.pending == nil || lb.records == nil {
		return nil
	}
	records := newSeeker(lb.records)
	c := lb.pending.Cursor()
	k, _ := c.First()
	if after != "" {
		k, _ = c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, _ = c.Next()
		}
	}
	for ; k != nil; k, _ = c.Next() {
		d, found, err := getDelivery(records, editionID, k)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("boltstore: edition %s: %s is pending but has no delivery record: run a check", editionID, k)
		}
		stop, err := fn(k, d)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// RecordDeliveries writes a batch of delivery records in ONE transaction
// (one fsync), all or none. Each record replaces the ledger's record for
// its (Edition, Email); a zero At is set to the clock's now. The edition's
// Sent, Failed and Suppressed counters follow each transition: a record
// going from queued (or from nowhere) to sent adds 1 to Sent, one moving
// from failed to sent moves 1 from Failed to Sent, and recording the same
// final state again changes nothing. Recording a queued state puts the
// address back in the queue. After the batch, an edition with no queued
// record left becomes digest.EditionSent with Finished set to now (unless
// it already was sent); one with queued records that was marked sent goes
// back to sending. Unknown editions fail the batch with an error wrapping
// ErrNotFound.
func (s *Store) RecordDeliveries(ds []digest.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error { return s.recordDeliveries(tx, ds) })
}

// recordDeliveries is RecordDeliveries inside tx (history.go adds the
// recipients' story history to the same transaction). The edition record
// is neither decoded (its status is cached with the counters, under its
// checksum) nor rewritten unless its status changes; the counters go to
// their own small key (counts.go).
func (s *Store) recordDeliveries(tx *bolt.Tx, ds []digest.Delivery) error {
	now := s.now()
	type state struct {
		c                editionCounts
		status           digest.EditionStatus // the record's, unchanged in this loop
		lb               ledgerBuckets
		pending, records seeker
	}
	editions := make(map[string]*state)
	var order []string
	records := tx.Bucket(bucketEditions)
	for i, d := range ds {
		st := editions[d.Edition]
		if st == nil {
			raw := records.Get([]byte(d.Edition))
			if raw == nil {
				return fmt.Errorf("boltstore: delivery %d: %w", i+1, notFound("edition %q", d.Edition))
			}
			c, ok, err := getCounts(tx, d.Edition)
			if err != nil {
				return fmt.Errorf("boltstore: delivery %d: %w", i+1, err)
			}
			status, sum, err := recordStatus(d.Edition, raw, c, ok)
			if err != nil {
				return fmt.Errorf("boltstore: delivery %d: %w", i+1, err)
			}
			c.sum, c.status = sum, status
			if !ok {
				e, err := decodeEdition(tx, d.Edition, raw)
				if err != nil {
					return fmt.Errorf("boltstore: delivery %d: %w", i+1, err)
				}
				c.Sent, c.Failed, c.Suppressed, c.Skipped = e.Sent, e.Failed, e.Suppressed, e.Skipped
			}
			lb, err := ledger(tx, d.Edition)
			if err != nil {
				return err
			}
			st = &state{c: c, status: status, lb: lb, pending: newSeeker(lb.pending), records: newSeeker(lb.records)}
			editions[d.Edition] = st
			order = append(order, d.Edition)
		}
		email, err := subscribers.NormalizeEmail(d.Email)
		if err != nil {
			return fmt.Errorf("boltstore: delivery %d of %s: %w", i+1, d.Edition, err)
		}
		d.Email = email
		switch d.Status {
		case digest.DeliveryQueued, digest.DeliverySent, digest.DeliveryFailed, digest.DeliverySuppressed, digest.DeliverySkipped:
		default:
			return fmt.Errorf("boltstore: delivery %d (%s, %s): unknown status %q", i+1, d.Edition, email, d.Status)
		}
		if d.At.IsZero() {
			d.At = now
		}
		key := []byte(email)
		// A pending address is queued: no need to read its record.
		wasPending := st.pending.Get(key) != nil
		if !wasPending {
			if raw := st.records.Get(key); raw != nil {
				prev, err := rowStatus(raw)
				if err != nil {
					return fmt.Errorf("boltstore: decode delivery %q of %s: %w", key, d.Edition, err)
				}
				if c := st.c.counter(prev); c != nil && *c > 0 {
					*c--
				}
			}
		}
		if c := st.c.counter(d.Status); c != nil {
			*c++
		}
		if err := putDelivery(st.lb.records, key, d); err != nil {
			return fmt.Errorf("boltstore: record delivery to %s for %s: %w", email, d.Edition, err)
		}
		switch {
		case d.Status == digest.DeliveryQueued && !wasPending:
			err = st.lb.pending.Put(key, pendingMark)
		case d.Status != digest.DeliveryQueued && wasPending:
			err = st.lb.pending.Delete(key)
		}
		if err != nil {
			return fmt.Errorf("boltstore: record delivery to %s for %s: %w", email, d.Edition, err)
		}
	}
	for _, id := range order {
		st := editions[id]
		status := st.status
		var next digest.EditionStatus
		if k, _ := st.lb.pending.Cursor().First(); k == nil {
			if status != digest.EditionSent {
				next = digest.EditionSent
			}
		} else if status == digest.EditionSent {
			next = digest.EditionSending
		}
		if next == "" {
			if err := putCounts(tx, id, st.c); err != nil {
				return err
			}
			continue
		}
		e, err := getEdition(tx, id)
		if err != nil {
			return err
		}
		st.c.apply(&e)
		e.Status, e.Finished = next, time.Time{}
		if next == digest.EditionSent {
			e.Finished = now
		}
		if err := putEdition(tx, e); err != nil {
			return fmt.Errorf("boltstore: update edition %s: %w", id, err)
		}
	}
	return nil
}

// Deliveries returns every record of the edition's ledger in email order,
// or an error wrapping ErrNotFound for an unknown edition.
func (s *Store) Deliveries(editionID string) ([]digest.Delivery, error) {
	var out []digest.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		if _, err := getEdition(tx, editionID); err != nil {
			return err
		}
		lb, _ := ledger(tx, editionID)
		if lb.records == nil {
			return nil
		}
		return lb.records.ForEach(func(k, v []byte) error {
			d, err := decodeDelivery(editionID, k, v)
			if err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// FailedDeliveries returns the edition's failed and suppressed delivery
// records in email order, at most limit of them (0: all). It decodes only
// those: the others are passed over on their status byte, giving back the
// pages walked now and then, so a million-row ledger costs the daemon
// neither the memory nor a long decode (editions show through the admin
// API).
func (s *Store) FailedDeliveries(editionID string, limit int) ([]digest.Delivery, error) {
	if limit < 0 {
		return nil, fmt.Errorf("boltstore: failed deliveries of %s: negative limit %d", editionID, limit)
	}
	var out []digest.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		if _, err := getEdition(tx, editionID); err != nil {
			return err
		}
		lb, _ := ledger(tx, editionID)
		if lb.records == nil {
			return nil
		}
		return s.walk(tx, lb.records, func(k, v []byte) (bool, error) {
			st, err := rowStatus(v)
			if err != nil {
				return false, fmt.Errorf("boltstore: decode delivery %q of %s: %w", k, editionID, err)
			}
			if st != digest.DeliveryFailed && st != digest.DeliverySuppressed {
				return false, nil
			}
			d, err := decodeDelivery(editionID, k, v)
			if err != nil {
				return false, err
			}
			out = append(out, d)
			return limit > 0 && len(out) == limit, nil
		})
	})
	return out, err
}

// SentArticles returns the IDs of the articles in the editions of list
// (every list when empty) created at or after since, so that a new edition
// can leave them out.
func (s *Store) SentArticles(list string, since time.Time) (map[string]bool, error) {
	out := make(map[string]bool)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEditions)
		return b.ForEach(func(k, _ []byte) error {
			var e digest.Edition
			if _, err := getJSON(b, k, &e); err != nil {
				return err
			}
			if (list != "" && e.List != list) || e.Created.Before(since) {
				return nil
			}
			for _, p := range e.Stories.Picks() {
				out[p.Article.ID] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PendingRecipients pages through the edition's queued records like
// PendingDeliveries and, in the same read transaction, looks up each
// recipient's subscriber record and suppression: fn gets the record, the
// subscriber (a zero Subscriber when the address is no longer one) and
// the suppression reason ("" when not suppressed). The subscriber holds
// what a send uses: every field but Consent, Created and Updated (left
// zero), with Lists holding only the membership of the edition's list
// (nil when they have none). fn runs inside the read transaction: it must
// only copy what it needs and return. It returns the number of records
// passed to fn.
func (s *Store) PendingRecipients(editionID, after string, limit int, fn func(d digest.Delivery, sub subscribers.Subscriber, suppressed string)) (int, error) {
	if limit < 0 {
		return 0, fmt.Errorf("boltstore: pending recipients of %s: negative limit %d", editionID, limit)
	}
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		list, err := s.editionList(tx, editionID)
		if err != nil {
			return err
		}
		subs := newSeeker(tx.Bucket(bucketSubscribers))
		sups := tx.Bucket(bucketSuppressions)
		supSeek := newSeeker(sups)
		return eachPending(tx, editionID, after, func(k []byte, d digest.Delivery) (bool, error) {
			var sub subscribers.Subscriber
			if raw := subs.Get(k); raw != nil {
				var err error
				r := subRead{fields: readSendFields, list: list, onlyList: true, key: d.Email}
				if sub, err = readSubscriber(k, raw, &r); err != nil {
					return false, err
				}
			}
			reason := ""
			if raw := supSeek.Get(k); raw != nil {
				var sup Suppression
				if _, err := getJSON(sups, k, &sup); err != nil {
					return false, err
				}
				reason = sup.Reason
				if reason == "" {
					reason = "suppressed"
				}
			}
			fn(d, sub, reason)
			n++
			return limit > 0 && n == limit, nil
		})
	})
	return n, err
}

// walk calls fn with b's keys and values in order until fn says stop or
// fails, giving back the pages walked every 65,536 keys: a million-row
// ledger spans tens of MB of the file.
func (s *Store) walk(tx *bolt.Tx, b *bolt.Bucket, fn func(k, v []byte) (stop bool, err error)) error {
	c := b.Cursor()
	n := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if n++; n%(1<<16) == 0 {
			if err := s.releaseIn(tx); err != nil {
				return err
			}
		}
		if stop, err := fn(k, v); err != nil || stop {
			return err
		}
	}
	return nil
}

// CountPending returns how many of the edition's records are queued.
func (s *Store) CountPending(editionID string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if _, err := getEdition(tx, editionID); err != nil {
			return err
		}
		lb, _ := ledger(tx, editionID)
		if lb.pending == nil {
			return nil
		}
		return s.walk(tx, lb.pending, func(_, _ []byte) (bool, error) {
			n++
			return false, nil
		})
	})
	return n, err
}
