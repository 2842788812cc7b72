package boltstore

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

func TestClicksAndUnsubscribesPerEdition(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "nd.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Check(); err != nil {
			t.Error(err)
		}
		s.Close()
	}()
	t0 := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	a := digest.Article{ID: "a1", Title: "Storm", Link: "https://x.example/1", Published: t0, Clicks: 3}
	if _, _, err := s.UpsertArticles([]digest.Article{a}); err != nil {
		t.Fatal(err)
	}
	ed := digest.Edition{ID: "daily-1", List: "daily", Created: t0, Stories: digest.Selection{Top: []digest.Pick{{Article: a}}}}
	next := digest.Edition{ID: "daily-2", List: "daily", Created: t0.Add(24 * time.Hour)}
	for _, e := range []digest.Edition{ed, next} {
		if _, err := s.CreateEdition(e); err != nil {
			t.Fatal(err)
		}
	}

	// Clicks.
	if _, err := s.RecordClick("daily-1", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("click on a story not in the edition: %v", err)
	}
	if _, err := s.RecordClick("daily-9", "a1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("click in an unknown edition: %v", err)
	}
	for i := 1; i <= 2; i++ {
		n, err := s.RecordClick("daily-1", "a1")
		if err != nil || n != int64(i) {
			t.Fatalf("click %d: %d, %v", i, n, err)
		}
	}
	if c, err := s.EditionClicks("daily-1"); err != nil || c["a1"] != 2 {
		t.Fatalf("EditionClicks = %v, %v", c, err)
	}
	if c, err := s.EditionClicks("daily-2"); err != nil || len(c) != 0 {
		t.Fatalf("EditionClicks of an edition never clicked = %v, %v", c, err)
	}
	if got, _ := s.GetArticle("a1"); got.Clicks != 5 {
		t.Fatalf("article clicks %d, want 3+2", got.Clicks)
	}

	// Unsubscribes: recipients of daily-1 who left between it and daily-2.
	add := func(email string, st subscribers.Status, at time.Time) {
		sub := subscribers.Subscriber{Email: email, SendHour: -1, Frequency: subscribers.Daily}
		sub.SetStatus("daily", st, at)
		if err := s.AddSubscriber(sub); err != nil {
			t.Fatal(err)
		}
	}
	add("left@example.org", subscribers.Unsubscribed, t0.Add(2*time.Hour))       // counts
	add("later@example.org", subscribers.Unsubscribed, t0.Add(30*time.Hour))     // after the next edition
	add("before@example.org", subscribers.Unsubscribed, t0.Add(-time.Hour))      // before this one
	add("stayed@example.org", subscribers.Confirmed, t0)                         // still there
	add("failed@example.org", subscribers.Unsubscribed, t0.Add(time.Hour))       // never got it
	add("notrecipient@example.org", subscribers.Unsubscribed, t0.Add(time.Hour)) // not in the ledger
	emails := []string{"left@example.org", "later@example.org", "before@example.org", "stayed@example.org", "failed@example.org"}
	if _, err := s.QueueDeliveries("daily-1", emails); err != nil {
		t.Fatal(err)
	}
	var ds []digest.Delivery
	for _, e := range emails {
		st := digest.DeliverySent
		if e == "failed@example.org" {
			st = digest.DeliveryFailed
		}
		ds = append(ds, digest.Delivery{Edition: "daily-1", Email: e, Status: st, At: t0})
	}
	if err := s.RecordDeliveries(ds); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EditionUnsubscribes(ed, next.Created); err != nil || n != 1 {
		t.Fatalf("EditionUnsubscribes until the next edition = %d, %v; want 1", n, err)
	}
	if n, err := s.EditionUnsubscribes(ed, time.Time{}); err != nil || n != 2 {
		t.Fatalf("EditionUnsubscribes with no next edition = %d, %v; want 2", n, err)
	}
}
