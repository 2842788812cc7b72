package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
)

// The per-subscriber story history: which stories each subscriber was sent
// and when, so that nobody gets the same story twice. One record per
// subscriber address (the ledger's key, so that the records a send writes
// sit next to each other in the file, in the order of its ledger rows,
// instead of dirtying one page each) holding a packed sequence of entries
//
//	[4-byte unix seconds][1-byte length|0x80 if hex-packed][article ID]
//
// Article IDs of 16 hex digits (digest.ArticleID) are stored as 8 raw
// bytes, so an entry takes 13 bytes: a daily reader of 10 stories costs
// about 4 KB over 30 days. Entries older than the retention are dropped
// whenever the record is written, and by PruneHistory. Deleting a
// subscriber deletes their history.
var bucketHistory = []byte("story_history")

// bucketHistoryByID is the history as the first releases kept it, keyed
// by subscriber ID; a writable Open moves it to bucketHistory.
var bucketHistoryByID = []byte("history")

// migrateHistory moves the ID-keyed history to address keys, merging
// entries, and drops the old bucket. Entries of IDs that no longer name a
// subscriber are dropped: nobody can be sent anything under them.
func migrateHistory(tx *bolt.Tx) error {
	old := tx.Bucket(bucketHistoryByID)
	if old == nil {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketHistory)
	if err != nil {
		return fmt.Errorf("boltstore: history: %w", err)
	}
	ids := tx.Bucket(bucketSubscriberIDs)
	type move struct{ email, val []byte }
	var moves []move
	err = old.ForEach(func(k, v []byte) error {
		if email := ids.Get(k); email != nil {
			moves = append(moves, move{append([]byte(nil), email...), append([]byte(nil), v...)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range moves {
		val := append(append([]byte(nil), b.Get(m.email)...), m.val...)
		if err := b.Put(m.email, val); err != nil {
			return fmt.Errorf("boltstore: history of %s: %w", m.email, err)
		}
	}
	return tx.DeleteBucket(bucketHistoryByID)
}

// RecordDeliveriesWithHistory is RecordDeliveries plus the recipients'
// story history, written in the same transaction (one fsync), so that a
// delivery recorded as sent always has its stories in the history and a
// queued one never does. hist maps subscriber addresses (as in the
// ledger) to the article IDs sent to them at at. Entries older than keepSince are dropped from the
// records it writes.
func (s *Store) RecordDeliveriesWithHistory(ds []digest.Delivery, hist map[string][]string, at, keepSince time.Time) error {
	if len(ds) == 0 && len(hist) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if len(ds) > 0 {
			if err := s.recordDeliveries(tx, ds); err != nil {
				return err
			}
		}
		if len(hist) == 0 {
			return nil
		}
		b, err := tx.CreateBucketIfNotExists(bucketHistory)
		if err != nil {
			return fmt.Errorf("boltstore: history: %w", err)
		}
		b.FillPercent = sequentialFill // written in the ledger's address order
		seek := newSeeker(b)
		for email, arts := range hist {
			if email == "" || len(arts) == 0 {
				continue
			}
			key := []byte(email)
			if err := b.Put(key, mergeHistory(seek.Get(key), arts, at, keepSince)); err != nil {
				return fmt.Errorf("boltstore: history of %s: %w", email, err)
			}
		}
		return nil
	})
}

// mergeHistory returns the packed record old without its entries from
// before keepSince, plus an entry at at for each of arts not in it yet. It
// works on the packed bytes: a send writes one record per message.
func mergeHistory(old []byte, arts []string, at, keepSince time.Time) []byte {
	keep := keepSince.Unix()
	if keepSince.Nanosecond() > 0 {
		keep++ // entries have whole seconds: one at keep-1 is before keepSince
	}
	// The new IDs as packed ([length|flag][id]), without repeats, one after
	// the other in one buffer; ends[i] is where the i-th ends. (A digest
	// has a dozen stories: the arrays keep them off the heap.)
	var freshArr [256]byte
	var endsArr [32]int
	var doneArr [32]bool
	fresh, ends := freshArr[:0], endsArr[:0]
	packed := func(i int) []byte {
		if i == 0 {
			return fresh[:ends[0]]
		}
		return fresh[ends[i-1]:ends[i]]
	}
	for _, id := range arts {
		start := len(fresh)
		fresh = appendPackedID(fresh, id)
		repeat := false
		for i := range ends {
			if bytes.Equal(packed(i), fresh[start:]) {
				repeat = true
				break
			}
		}
		if repeat {
			fresh = fresh[:start]
		} else {
			ends = append(ends, len(fresh))
		}
	}
	done := doneArr[:0] // fresh IDs already in old
	for range ends {
		done = append(done, false)
	}
	val := make([]byte, 0, len(old)+len(fresh)+4*len(ends))
	for len(old) >= 5 {
		end := 5 + int(old[4]&^0x80)
		if end > len(old) {
			break // a damaged tail ends the record, as in entries
		}
		if int64(binary.BigEndian.Uint32(old)) >= keep {
			val = append(val, old[:end]...)
			for i := range ends {
				if !done[i] && bytes.Equal(old[4:end], packed(i)) {
					done[i] = true
				}
			}
		}
		old = old[end:]
	}
	for i := range ends {
		if !done[i] {
			val = binary.BigEndian.AppendUint32(val, uint32(max(at.Unix(), 0)))
			val = append(val, packed(i)...)
		}
	}
	return val
}

// SeenStories returns, for each subscriber address asked (as in the
// ledger: normalized), the IDs of the stories sent to them at or after
// since (addresses with no history are absent).
func (s *Store) SeenStories(emails []string, since time.Time) (map[string]map[string]bool, error) {
	out := make(map[string]map[string]bool)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		if b == nil {
			return nil
		}
		seek := newSeeker(b)
		for _, id := range emails {
			if id == "" {
				continue
			}
			for e := range entries(seek.Get([]byte(id))) {
				if e.at.Before(since) {
					continue
				}
				m := out[id]
				if m == nil {
					m = make(map[string]bool)
					out[id] = m
				}
				m[e.id] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: history: %w", err)
	}
	return out, nil
}

// PruneHistory drops the history entries older than before, and records
// left empty, in one transaction; it returns how many entries it dropped.
func (s *Store) PruneHistory(before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		if b == nil {
			return nil
		}
		type change struct{ k, v []byte }
		var changes []change
		err := b.ForEach(func(k, v []byte) error {
			var kept []byte
			dropped := 0
			for e := range entries(v) {
				if e.at.Before(before) {
					dropped++
					continue
				}
				kept = appendEntry(kept, e.at, e.id)
			}
			if dropped > 0 {
				n += dropped
				changes = append(changes, change{append([]byte(nil), k...), kept})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range changes {
			if len(c.v) == 0 {
				err = b.Delete(c.k)
			} else {
				err = b.Put(c.k, c.v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("boltstore: prune history: %w", err)
	}
	return n, nil
}

type historyEntry struct {
	at time.Time
	id string
}

// entries iterates over a packed history record; a damaged tail ends it.
func entries(v []byte) func(func(historyEntry) bool) {
	return func(yield func(historyEntry) bool) {
		for len(v) >= 5 {
			at := time.Unix(int64(binary.BigEndian.Uint32(v)), 0).UTC()
			l := int(v[4] &^ 0x80)
			packed := v[4]&0x80 != 0
			if len(v) < 5+l {
				return
			}
			raw := v[5 : 5+l]
			id := string(raw)
			if packed {
				id = hex.EncodeToString(raw)
			}
			if !yield(historyEntry{at, id}) {
				return
			}
			v = v[5+l:]
		}
	}
}

func appendEntry(b []byte, at time.Time, id string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(max(at.Unix(), 0)))
	return appendPackedID(b, id)
}

// appendPackedID appends an entry's ID part: a 16-digit lower-case hex ID
// as its 8 bytes with the length's high bit set, any other as it is.
func appendPackedID(b []byte, id string) []byte {
	if len(id) == 16 && isLowerHex(id) {
		b = append(b, 0x80|8)
		for i := 0; i < 16; i += 2 {
			b = append(b, unhex(id[i])<<4|unhex(id[i+1]))
		}
		return b
	}
	if len(id) > 0x7f {
		id = id[:0x7f] // article IDs are short; never reached
	}
	b = append(b, byte(len(id)))
	return append(b, id...)
}

// unhex is the value of a lower-case hex digit.
func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Edition pools (digest.Edition.Pool) live apart from the edition
// records, which every ledger commit decodes and rewrites.
var bucketPools = []byte("edition_pools")

func putPool(tx *bolt.Tx, id string, pool []digest.Pick) error {
	if len(pool) == 0 {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketPools)
	if err != nil {
		return fmt.Errorf("boltstore: edition %s: pool: %w", id, err)
	}
	return putJSON(b, []byte(id), pool)
}

func getPool(tx *bolt.Tx, id string) ([]digest.Pick, error) {
	b := tx.Bucket(bucketPools)
	if b == nil {
		return nil, nil
	}
	var pool []digest.Pick
	_, err := getJSON(b, []byte(id), &pool)
	return pool, err
}
