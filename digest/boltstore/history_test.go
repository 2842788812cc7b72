package boltstore

import (
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
	hist := map[string][]string{"sub-ann": {"0123456789abcdef", "cms-4711", "0123456789abcdef"}}
	if err := s.RecordDeliveriesWithHistory([]digest.Delivery{d}, hist, t0, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	ed, err := s.GetEdition("e1")
	if err != nil || ed.Sent != 1 || len(ed.Pool) != 1 || ed.Pool[0].Article.Title != "In the pool" {
		t.Fatalf("edition %+v %v: want sent 1 and its pool", ed, err)
	}
	seen, err := s.SeenStories([]string{"sub-ann", "sub-bob"}, t0.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(seen["sub-ann"]) != 2 || !seen["sub-ann"]["0123456789abcdef"] || !seen["sub-ann"]["cms-4711"] || seen["sub-bob"] != nil {
		t.Errorf("seen %v", seen)
	}
	// A day later, one more story; the old ones drop out of a 12h window
	// and are pruned.
	if err := s.RecordDeliveriesWithHistory(nil, map[string][]string{"sub-ann": {"fedcba9876543210"}}, t0.Add(24*time.Hour), t0.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	seen, _ = s.SeenStories([]string{"sub-ann"}, t0.Add(12*time.Hour))
	if len(seen["sub-ann"]) != 1 || !seen["sub-ann"]["fedcba9876543210"] {
		t.Errorf("seen in the last 12h: %v", seen)
	}
	n, err := s.PruneHistory(t0.Add(12 * time.Hour))
	if err != nil || n != 2 {
		t.Errorf("pruned %d, %v; want 2", n, err)
	}
	seen, _ = s.SeenStories([]string{"sub-ann"}, time.Time{})
	if len(seen["sub-ann"]) != 1 {
		t.Errorf("after pruning: %v", seen)
	}
	// A failed record with history in the same batch: nothing is written
	// (one transaction).
	bad := digest.Delivery{Edition: "nope", Email: "ann@example.org", Status: digest.DeliverySent}
	if err := s.RecordDeliveriesWithHistory([]digest.Delivery{bad}, map[string][]string{"sub-x": {"aa"}}, t0, t0); err == nil {
		t.Fatal("recording for an unknown edition succeeded")
	}
	if seen, _ := s.SeenStories([]string{"sub-x"}, time.Time{}); seen["sub-x"] != nil {
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
