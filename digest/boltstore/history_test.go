package boltstore

import (
	"bytes"
	"fmt"
	bolt "go.etcd.io/bbolt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/schedule"
	"newsdigest/subscribers"
)

func TestHistoryWithTheLedgerAndPruning(t *testing.T) {
	s, _ := mustOpen(t)
	if err := s.PutList(subscribers.List{Name: "daily", Title: "Daily", From: "d@gazette.example"}); err != nil {
		t.Fatal(err)
	}
	pool := []digest.Pick{{Article: digest.Article{ID: "0123456789abcdef", Title: "In the pool"}}}
	if _, err := s.CreateEdition(digest.Edition{ID: "e1", List: "daily", Pool: pool}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueDeliveries("e1", []string{"ann@example.org"}); err != nil {
		t.Fatal(err)
	}
	d := digest.Delivery{Edition: "e1", Email: "ann@example.org", Status: digest.DeliverySent}
	hist := map[string][]string{"ann@example.org": {"0123456789abcdef", "cms-4711", "0123456789abcdef"}}
	if err := s.RecordDeliveriesWithHistory([]digest.Delivery{d}, hist, t0, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	ed, err := s.GetEdition("e1")
	if err != nil || ed.Sent != 1 || len(ed.Pool) != 1 || ed.Pool[0].Article.Title != "In the pool" {
		t.Fatalf("edition %+v %v: want sent 1 and its pool", ed, err)
	}
	seen, err := s.SeenStories([]string{"ann@example.org", "bob@example.org"}, t0.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(seen["ann@example.org"]) != 2 || !seen["ann@example.org"]["0123456789abcdef"] || !seen["ann@example.org"]["cms-4711"] || seen["bob@example.org"] != nil {
		t.Errorf("seen %v", seen)
	}
	// A day later, one more story; the old ones drop out of a 12h window
	// and are pruned.
	if err := s.RecordDeliveriesWithHistory(nil, map[string][]string{"ann@example.org": {"fedcba9876543210"}}, t0.Add(24*time.Hour), t0.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	seen, _ = s.SeenStories([]string{"ann@example.org"}, t0.Add(12*time.Hour))
	if len(seen["ann@example.org"]) != 1 || !seen["ann@example.org"]["fedcba9876543210"] {
		t.Errorf("seen in the last 12h: %v", seen)
	}
	n, err := s.PruneHistory(t0.Add(12 * time.Hour))
	if err != nil || n != 2 {
		t.Errorf("pruned %d, %v; want 2", n, err)
	}
	seen, _ = s.SeenStories([]string{"ann@example.org"}, time.Time{})
	if len(seen["ann@example.org"]) != 1 {
		t.Errorf("after pruning: %v", seen)
	}
	// A failed record with history in the same batch: nothing is written
	// (one transaction).
	bad := digest.Delivery{Edition: "nope", Email: "ann@example.org", Status: digest.DeliverySent}
	if err := s.RecordDeliveriesWithHistory([]digest.Delivery{bad}, map[string][]string{"x@example.org": {"aa"}}, t0, t0); err == nil {
		t.Fatal("recording for an unknown edition succeeded")
	}
	if seen, _ := s.SeenStories([]string{"x@example.org"}, time.Time{}); seen["x@example.org"] != nil {
		t.Error("history written although its ledger batch failed")
	}
}

func TestLocalIndexQueueAndReaders(t *testing.T) {
	s, _ := mustOpen(t)
	if err := s.PutList(subscribers.List{Name: "local", Title: "Local", From: "d@gazette.example", Schedule: "local"}); err != nil {
		t.Fatal(err)
	}
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	if err := s.SetReaders("local", map[string]*schedule.ReaderState{"a": {Next: at(2)}, "b": {Next: at(1)}, "c": {Next: at(5)}}); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueReaders("local", at(2), 0)
	if err != nil || len(due) != 2 || due[0].SubscriberID != "b" || due[1].SubscriberID != "a" {
		t.Fatalf("due at +2h: %+v %v", due, err)
	}
	if _, err := s.CreateEdition(digest.Edition{ID: "local-x", List: "local"}); err != nil {
		t.Fatal(err)
	}
	n, err := s.QueueLocal("local-x", "local", []schedule.Queued{{SubscriberID: "b", Email: "b@example.org", Date: "2026-11-27", Next: at(25)}})
	if err != nil || n != 1 {
		t.Fatalf("queued %d %v", n, err)
	}
	if due, _ := s.DueReaders("local", at(2), 0); len(due) != 1 || due[0].SubscriberID != "a" {
		t.Errorf("due after queueing b: %+v", due)
	}
	st, ok, _ := s.ReaderState("local", "b")
	if !ok || st.LastDate != "2026-11-27" || !st.Next.Equal(at(25)) {
		t.Errorf("b's state %+v", st)
	}
	// Queueing again never adds a second delivery.
	if n, _ := s.QueueLocal("local-x", "local", []schedule.Queued{{SubscriberID: "b", Email: "b@example.org", Date: "2026-11-27", Next: at(25)}}); n != 0 {
		t.Errorf("queued b twice: %d", n)
	}
	if err := s.SetReaders("local", map[string]*schedule.ReaderState{"c": nil}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueReaders("local", at(100), 0); len(due) != 2 {
		t.Errorf("after removing c: %+v", due)
	}
	states, _ := s.ReaderStates("local")
	if len(states) != 2 {
		t.Errorf("states %v", states)
	}
}

// A database written before the history was keyed by address: a writable
// open moves each subscriber's entries to their address, drops those of
// IDs that name nobody, and removes the old bucket; deleting a subscriber
// deletes their history.
func TestHistoryMigratesFromIDKeysAndGoesWithTheSubscriber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddSubscriber(subscribers.Subscriber{ID: "sub-ann", Email: "Ann@Example.org"}); err != nil {
		t.Fatal(err)
	}
	// Write the old layout by hand: ID-keyed entries, one for a deleted
	// subscriber.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketHistoryByID)
		if err != nil {
			return err
		}
		if err := b.Put([]byte("sub-ann"), appendEntry(nil, t0, "0123456789abcdef")); err != nil {
			return err
		}
		return b.Put([]byte("sub-gone"), appendEntry(nil, t0, "fedcba9876543210"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	seen, err := s.SeenStories([]string{"ann@example.org"}, time.Time{})
	if err != nil || len(seen) != 1 || !seen["ann@example.org"]["0123456789abcdef"] {
		t.Fatalf("after the migration: %v, %v; want ann's story under her address", seen, err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketHistoryByID) != nil {
			t.Error("the old history bucket is still there")
		}
		if n := tx.Bucket(bucketHistory).Stats().KeyN; n != 1 {
			t.Errorf("%d history records, want 1 (the deleted subscriber's dropped)", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSubscriber("ann@example.org"); err != nil {
		t.Fatal(err)
	}
	if seen, _ := s.SeenStories([]string{"ann@example.org"}, time.Time{}); len(seen) != 0 {
		t.Errorf("history after deleting the subscriber: %v", seen)
	}
}

// mergeHistory, which works on packed bytes, keeps exactly what decoding
// the record does: unexpired entries in order, then each new story not in
// them once.
func TestMergeHistoryMatchesDecodedMerge(t *testing.T) {
	ids := []string{"0123456789abcdef", "fedcba9876543210", "cms-4711", "a", "0123456789ABCDEF"}
	for k := range 60 { // some runs have more stories than a digest
		ids = append(ids, fmt.Sprintf("%016x", uint64(k)*0x9e3779b97f4a7c15), fmt.Sprintf("cms-%d-%s", k, strings.Repeat("x", k)))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for range 2000 {
		var old []byte
		for range rng.IntN(8) {
			old = appendEntry(old, base.Add(time.Duration(rng.IntN(100))*time.Hour), ids[rng.IntN(len(ids))])
		}
		var arts []string
		n, pick := rng.IntN(5), 5 // mostly the first five IDs: repeats
		if rng.IntN(8) == 0 {
			n, pick = 20+rng.IntN(60), len(ids)
		}
		for range n {
			arts = append(arts, ids[rng.IntN(pick)])
		}
		at := base.Add(100 * time.Hour)
		keepSince := base.Add(time.Duration(rng.IntN(100))*time.Hour + time.Duration(rng.IntN(2))*time.Second/2)

		var want []byte
		seen := map[string]bool{}
		for e := range entries(old) {
			if !e.at.Before(keepSince) {
				want = appendEntry(want, e.at, e.id)
				seen[e.id] = true
			}
		}
		for _, id := range arts {
			if !seen[id] {
				want = appendEntry(want, at, id)
				seen[id] = true
			}
		}
		if got := mergeHistory(old, arts, at, keepSince); !bytes.Equal(got, want) {
			t.Fatalf("old %x, arts %v, keepSince %v:\n got %x\nwant %x", old, arts, keepSince, got, want)
		}
	}
}
