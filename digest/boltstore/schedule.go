package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
	"newsdigest/digest/schedule"
	"newsdigest/subscribers"
)

// Schedule state, kept across restarts:
//
//	schedule       list name → schedule.ListState (JSON): the last slot a cron list handled
//	sched_next     list name → bucket of big-endian unix seconds + subscriber ID → "":
//	               the next-send index of local-time lists, in time order
//	sched_readers  list name → bucket of subscriber ID → schedule.ReaderState (JSON)
//
// The buckets are created on first write, so files made before they
// existed need no migration.
var (
	bucketSchedule     = []byte("schedule")
	bucketSchedNext    = []byte("sched_next")
	bucketSchedReaders = []byte("sched_readers")
)

// GetListSchedule returns the schedule state of list (zero if none yet).
func (s *Store) GetListSchedule(list string) (schedule.ListState, error) {
	var ls schedule.ListState
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSchedule)
		if b == nil {
			return nil
		}
		_, err := getJSON(b, []byte(list), &ls)
		return err
	})
	return ls, err
}

// PutListSchedule stores the schedule state of list.
func (s *Store) PutListSchedule(list string, ls schedule.ListState) error {
	if ls.Updated.IsZero() {
		ls.Updated = s.now()
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSchedule)
		if err != nil {
			return fmt.Errorf("boltstore: schedule of %s: %w", list, err)
		}
		return putJSON(b, []byte(list), ls)
	})
}

func indexKey64(at time.Time, subID string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(subID)), uint64(max(at.Unix(), 0)))
	return append(k, subID...)
}

// listBuckets returns the list's index and reader buckets, created when
// tx is writable; nil in a read transaction when missing.
func listBuckets(tx *bolt.Tx, list string) (next, readers *bolt.Bucket, err error) {
	if !tx.Writable() {
		if r := tx.Bucket(bucketSchedNext); r != nil {
			next = r.Bucket([]byte(list))
		}
		if r := tx.Bucket(bucketSchedReaders); r != nil {
			readers = r.Bucket([]byte(list))
		}
		return next, readers, nil
	}
	for _, p := range []struct {
		root []byte
		out  **bolt.Bucket
	}{{bucketSchedNext, &next}, {bucketSchedReaders, &readers}} {
		r, err := tx.CreateBucketIfNotExists(p.root)
		if err != nil {
			return nil, nil, fmt.Errorf("boltstore: schedule of %s: %w", list, err)
		}
		if *p.out, err = r.CreateBucketIfNotExists([]byte(list)); err != nil {
			return nil, nil, fmt.Errorf("boltstore: schedule of %s: %w", list, err)
		}
	}
	return next, readers, nil
}

// DueReaders returns the entries of list's next-send index at or before
// now, earliest first, at most limit (0 = all).
func (s *Store) DueReaders(list string, now time.Time, limit int) ([]schedule.DueEntry, error) {
	var out []schedule.DueEntry
	end := binary.BigEndian.AppendUint64(nil, uint64(max(now.Unix(), 0)))
	err := s.db.View(func(tx *bolt.Tx) error {
		next, _, _ := listBuckets(tx, list)
		if next == nil {
			return nil
		}
		c := next.Cursor()
		for k, _ := c.First(); k != nil && len(k) >= 8 && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			out = append(out, schedule.DueEntry{SubscriberID: string(k[8:]), At: time.Unix(int64(binary.BigEndian.Uint64(k)), 0).UTC()})
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// ReaderStates returns the state of every reader of list that the
// scheduler knows.
func (s *Store) ReaderStates(list string) (map[string]schedule.ReaderState, error) {
	out := make(map[string]schedule.ReaderState)
	err := s.db.View(func(tx *bolt.Tx) error {
		_, readers, _ := listBuckets(tx, list)
		if readers == nil {
			return nil
		}
		return readers.ForEach(func(k, _ []byte) error {
			var rs schedule.ReaderState
			if _, err := getJSON(readers, k, &rs); err != nil {
				return err
			}
			out[string(k)] = rs
			return nil
		})
	})
	return out, err
}

// ReaderState returns the state of one reader of list.
func (s *Store) ReaderState(list, subID string) (schedule.ReaderState, bool, error) {
	var rs schedule.ReaderState
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		_, readers, _ := listBuckets(tx, list)
		if readers == nil {
			return nil
		}
		var err error
		found, err = getJSON(readers, []byte(subID), &rs)
		return err
	})
	return rs, found, err
}

// setReader replaces a reader's state and index entry inside tx; a zero
// Next removes them from the index, and a nil rs removes the reader.
func setReader(next, readers *bolt.Bucket, subID string, rs *schedule.ReaderState) error {
	var old schedule.ReaderState
	found, err := getJSON(readers, []byte(subID), &old)
	if err != nil {
		return err
	}
	if found && !old.Next.IsZero() {
		if err := next.Delete(indexKey64(old.Next, subID)); err != nil {
			return err
		}
	}
	if rs == nil {
		return readers.Delete([]byte(subID))
	}
	if !rs.Next.IsZero() {
		if err := next.Put(indexKey64(rs.Next, subID), pendingMark); err != nil {
			return err
		}
	}
	return putJSON(readers, []byte(subID), rs)
}

// SetReaders writes the states (and index entries) of readers of list in
// one transaction; a nil state removes the reader from the schedule.
func (s *Store) SetReaders(list string, states map[string]*schedule.ReaderState) error {
	if len(states) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		next, readers, err := listBuckets(tx, list)
		if err != nil {
			return err
		}
		for id, rs := range states {
			if err := setReader(next, readers, id, rs); err != nil {
				return fmt.Errorf("boltstore: schedule of %s: reader %s: %w", list, id, err)
			}
		}
		return nil
	})
}

// QueueLocal queues a delivery of the edition for each reader not yet in
// its ledger and, in the same transaction, records the local date they
// got it for and their next entry in the index: a crash either leaves a
// reader due (and not queued) or queued with their date recorded, so a
// restart never sends them that date's edition twice. It returns how
// many deliveries it queued.
func (s *Store) QueueLocal(editionID, list string, qs []schedule.Queued) (int, error) {
	queued := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		queued = 0
		e, err := getEdition(tx, editionID)
		if err != nil {
			return err
		}
		lb, err := ledger(tx, editionID)
		if err != nil {
			return err
		}
		next, readers, err := listBuckets(tx, list)
		if err != nil {
			return err
		}
		now := s.now()
		for _, q := range qs {
			email, err := subscribers.NormalizeEmail(q.Email)
			if err != nil {
				return fmt.Errorf("boltstore: queue %s: %w", editionID, err)
			}
			key := []byte(email)
			if lb.records.Get(key) == nil {
				d := digest.Delivery{Edition: editionID, Email: email, Status: digest.DeliveryQueued, At: now}
				if err := putDelivery(lb.records, key, d); err != nil {
					return err
				}
				if err := lb.pending.Put(key, pendingMark); err != nil {
					return err
				}
				queued++
			}
			if err := setReader(next, readers, q.SubscriberID, &schedule.ReaderState{LastDate: q.Date, Next: q.Next}); err != nil {
				return fmt.Errorf("boltstore: schedule of %s: reader %s: %w", list, q.SubscriberID, err)
			}
		}
		if queued > 0 && e.Status == digest.EditionSent {
			e.Status, e.Finished = digest.EditionSending, time.Time{}
			return putJSON(tx.Bucket(bucketEditions), []byte(editionID), e)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("boltstore: queue local edition %s: %w", editionID, err)
	}
	return queued, nil
}

// ConfirmedSubscribers returns a page of the subscribers confirmed on
// list, in email order, strictly after after, at most limit (0 = all).
func (s *Store) ConfirmedSubscribers(list, after string, limit int) ([]subscribers.Subscriber, error) {
	return s.Subscribers(SubscriberQuery{List: list, Status: subscribers.Confirmed, After: after, Limit: limit})
}
