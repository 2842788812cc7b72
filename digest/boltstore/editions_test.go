package boltstore

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"newsdigest/digest"
)

func newEdition(t *testing.T, s *Store, list string, slot time.Time, articleIDs ...string) digest.Edition {
	t.Helper()
	e := digest.Edition{ID: digest.EditionID(list, slot), List: list, Slot: slot, Subject: "News"}
	for _, id := range articleIDs {
		e.Stories.Top = append(e.Stories.Top, digest.Pick{Article: digest.Article{ID: id}, Section: digest.SectionTop})
	}
	created, err := s.CreateEdition(e)
	if err != nil || !created {
		t.Fatalf("CreateEdition(%s) = %v, %v; want true, nil", e.ID, created, err)
	}
	got, err := s.GetEdition(e.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func deliveryEmails(ds []digest.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Email)
	}
	return out
}

func TestEditions(t *testing.T) {
	t.Run("CreateIsIdempotent", func(t *testing.T) {
		s, clock := mustOpen(t)
		e := newEdition(t, s, "daily", t0)
		if e.Status != digest.EditionSending || !e.Created.Equal(t0) {
			t.Errorf("Status, Created = %q, %v; want sending, %v", e.Status, e.Created, t0)
		}
		clock.Set(t0.Add(time.Minute))
		created, err := s.CreateEdition(digest.Edition{ID: e.ID, List: "daily", Subject: "Other"})
		if err != nil || created {
			t.Fatalf("second CreateEdition = %v, %v; want false, nil", created, err)
		}
		got, _ := s.GetEdition(e.ID)
		if got.Subject != "News" || !got.Created.Equal(t0) {
			t.Errorf("second create changed the edition: %+v", got)
		}
		if _, err := s.CreateEdition(digest.Edition{List: "daily"}); err == nil {
			t.Error("edition without ID accepted")
		}
		if _, err := s.GetEdition("nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetEdition(nope) = %v, want ErrNotFound", err)
		}
	})

	t.Run("ListNewestFirst", func(t *testing.T) {
		s, clock := mustOpen(t)
		for i, list := range []string{"daily", "weekly", "daily"} {
			clock.Set(t0.Add(time.Duration(i) * 24 * time.Hour))
			newEdition(t, s, list, clock.Now())
		}
		ids := func(es []digest.Edition) []string {
			var out []string
			for _, e := range es {
				out = append(out, e.ID)
			}
			return out
		}
		daily, _ := s.Editions("daily")
		if got, want := ids(daily), []string{"daily-20261129-0700", "daily-20261127-0700"}; !equalStrings(got, want) {
			t.Errorf("Editions(daily) = %v, want %v", got, want)
		}
		all, _ := s.Editions("")
		if got, want := ids(all), []string{"daily-20261129-0700", "weekly-20261128-0700", "daily-20261127-0700"}; !equalStrings(got, want) {
			t.Errorf("Editions(all) = %v, want %v", got, want)
		}
	})

	t.Run("Update", func(t *testing.T) {
		s, _ := mustOpen(t)
		e := newEdition(t, s, "daily", t0)
		got, err := s.UpdateEdition(e.ID, func(e *digest.Edition) error {
			e.Status, e.Reason = digest.EditionPaused, "operator"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := s.GetEdition(e.ID)
		if got.Status != digest.EditionPaused || stored.Status != digest.EditionPaused || stored.Reason != "operator" {
			t.Errorf("after pause: returned %q, stored %q/%q", got.Status, stored.Status, stored.Reason)
		}
		if _, err := s.UpdateEdition(e.ID, func(e *digest.Edition) error { e.ID = "x"; return nil }); err == nil {
			t.Error("changing the edition ID succeeded")
		}
		if _, err := s.UpdateEdition("nope", func(*digest.Edition) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateEdition(nope) = %v, want ErrNotFound", err)
		}
	})
}

func TestLedger(t *testing.T) {
	recipients := []string{"c@example.org", "a@example.org", "B@example.org", "d@example.org"}

	t.Run("QueueTwiceDoesNotDuplicate", func(t *testing.T) {
		s, _ := mustOpen(t)
		e := newEdition(t, s, "daily", t0)
		n, err := s.QueueDeliveries(e.ID, recipients)
		if err != nil || n != 4 {
			t.Fatalf("QueueDeliveries = %d, %v; want 4, nil", n, err)
		}
		// The second call overlaps the first and repeats an address.
		n, err = s.QueueDeliveries(e.ID, []string{"a@example.org", "b@example.org", "e@example.org", "e@example.org"})
		if err != nil || n != 1 {
			t.Fatalf("second QueueDeliveries = %d, %v; want 1, nil", n, err)
		}
		ds, _ := s.Deliveries(e.ID)
		want := []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"}
		if got := deliveryEmails(ds); !equalStrings(got, want) {
			t.Errorf("Deliveries = %v, want %v", got, want)
		}
		for _, d := range ds {
			if d.Status != digest.DeliveryQueued || d.Edition != e.ID {
				t.Errorf("%s: status, edition = %q, %q; want queued, %s", d.Email, d.Status, d.Edition, e.ID)
			}
		}
		if _, err := s.QueueDeliveries("nope", recipients); !errors.Is(err, ErrNotFound) {
			t.Errorf("QueueDeliveries(unknown edition) = %v, want ErrNotFound", err)
		}
		if _, err := s.QueueDeliveries(e.ID, []string{"f@example.org", "bad"}); err == nil {
			t.Error("QueueDeliveries accepted an invalid address")
		}
		if ds, _ := s.Deliveries(e.ID); len(ds) != 5 {
			t.Errorf("a failed queue call left %d records, want 5", len(ds))
		}
	})

	t.Run("PendingPaging", func(t *testing.T) {
		s, _ := mustOpen(t)
		e := newEdition(t, s, "daily", t0)
		s.QueueDeliveries(e.ID, recipients)
		page, err := s.PendingDeliveries(e.ID, "", 2)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := deliveryEmails(page), []string{"a@example.org", "b@example.org"}; !equalStrings(got, want) {
			t.Errorf("page 1 = %v, want %v", got, want)
		}
		// Sending a@ takes it out of the queue; paging goes on after b@.
		if err := s.RecordDeliveries([]digest.Delivery{{Edition: e.ID, Email: "a@example.org", Status: digest.DeliverySent}}); err != nil {
			t.Fatal(err)
		}
		page, _ = s.PendingDeliveries(e.ID, "b@example.org", 2)
		if got, want := deliveryEmails(page), []string{"c@example.org", "d@example.org"}; !equalStrings(got, want) {
			t.Errorf("page 2 = %v, want %v", got, want)
		}
		all, _ := s.PendingDeliveries(e.ID, "", 0)
		if got, want := deliveryEmails(all), []string{"b@example.org", "c@example.org", "d@example.org"}; !equalStrings(got, want) {
			t.Errorf("all pending = %v, want %v", got, want)
		}
		if _, err := s.PendingDeliveries("nope", "", 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("PendingDeliveries(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("CountersAndCompletion", func(t *testing.T) {
		s, clock := mustOpen(t)
		e := newEdition(t, s, "daily", t0)
		s.QueueDeliveries(e.ID, recipients)
		clock.Set(t0.Add(time.Minute))
		err := s.RecordDeliveries([]digest.Delivery{
			{Edition: e.ID, Email: "a@example.org", Status: digest.DeliverySent, MessageID: "<1@example.org>", Attempts: 1},
			{Edition: e.ID, Email: "b@example.org", Status: digest.DeliveryFailed, Reply: "451 try later", Attempts: 3},
			{Edition: e.ID, Email: "c@example.org", Status: digest.DeliverySuppressed, Reply: "complaint"},
		})
		if err != nil {
			t.Fatal(err)
		}
		checkCounts(t, s, e.ID, 1, 1, 1, digest.EditionSending)

		// Re-recording final records (a resumed send repeating its last
		// batch) does not count them again.
		err = s.RecordDeliveries([]digest.Delivery{
			{Edition: e.ID, Email: "a@example.org", Status: digest.DeliverySent, MessageID: "<1@example.org>", Attempts: 1},
			{Edition: e.ID, Email: "c@example.org", Status: digest.DeliverySuppressed, Reply: "complaint"},
		})
		if err != nil {
			t.Fatal(err)
		}
		checkCounts(t, s, e.ID, 1, 1, 1, digest.EditionSending)

		// A failed one retried and sent moves from Failed to Sent; the
		// last queued one completes the edition.
		finish := t0.Add(2 * time.Minute)
		clock.Set(finish)
		err = s.RecordDeliveries([]digest.Delivery{
			{Edition: e.ID, Email: "b@example.org", Status: digest.DeliverySent, Attempts: 4},
			{Edition: e.ID, Email: "D@example.org", Status: digest.DeliverySent, Attempts: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		got := checkCounts(t, s, e.ID, 3, 0, 1, digest.EditionSent)
		if !got.Finished.Equal(finish) {
			t.Errorf("Finished = %v, want %v", got.Finished, finish)
		}
		if pending, _ := s.PendingDeliveries(e.ID, "", 0); len(pending) != 0 {
			t.Errorf("pending after completion = %v", deliveryEmails(pending))
		}

		ds, _ := s.Deliveries(e.ID)
		byEmail := map[string]digest.Delivery{}
		for _, d := range ds {
			byEmail[d.Email] = d
		}
		if d := byEmail["a@example.org"]; d.MessageID != "<1@example.org>" || !d.At.Equal(t0.Add(time.Minute)) {
			t.Errorf("a@ record = %+v; want its message ID and the clock's time", d)
		}
		if d := byEmail["d@example.org"]; d.Status != digest.DeliverySent {
			t.Errorf("d@ (recorded as D@) = %+v, want sent", d)
		}

		// Recording again after completion keeps Finished.
		clock.Set(finish.Add(time.Hour))
		s.RecordDeliveries([]digest.Delivery{{Edition: e.ID, Email: "a@example.org", Status: digest.DeliverySent}})
		if got := checkCounts(t, s, e.ID, 3, 0, 1, digest.EditionSent); !got.Finished.Equal(finish) {
			t.Errorf("Finished moved to %v, want %v", got.Finished, finish)
		}
	})

	t.Run("LateRecipientsReopenEdition", func(t *testing.T) {
		s, _ := mustOpen(t)
		e := newEdition(t, s, "daily", t0)
		s.QueueDeliveries(e.ID, []string{"a@example.org"})
		s.RecordDeliveries([]digest.Delivery{{Edition: e.ID, Email: "a@example.org", Status: digest.DeliverySent}})
		checkCounts(t, s, e.ID, 1, 0, 0, digest.EditionSent)
		if n, _ := s.QueueDeliveries(e.ID, []string{"a@example.org", "b@example.org"}); n != 1 {
			t.Fatalf("queued %d, want 1", n)
		}
		got := checkCounts(t, s, e.ID, 1, 0, 0, digest.EditionSending)
		if !got.Finished.IsZero() {
			t.Errorf("Finished = %v after reopening, want zero", got.Finished)
		}
	})

	t.Run("PausedStaysPausedWhileQueued", func(t *testing.T) {
		s, _ := mustOpen(t)
		e := newEdition(t, s, "daily", t0)
		s.QueueDeliveries(e.ID, []string{"a@example.org", "b@example.org"})
		s.UpdateEdition(e.ID, func(e *digest.Edition) error { e.Status = digest.EditionPaused; return nil })
		s.RecordDeliveries([]digest.Delivery{{Edition: e.ID, Email: "a@example.org", Status: digest.DeliverySent}})
		checkCounts(t, s, e.ID, 1, 0, 0, digest.EditionPaused)
	})

	t.Run("BatchIsAtomic", func(t *testing.T) {
		s, _ := mustOpen(t)
		e := newEdition(t, s, "daily", t0)
		s.QueueDeliveries(e.ID, []string{"a@example.org", "b@example.org"})
		for name, bad := range map[string]digest.Delivery{
			"UnknownEdition": {Edition: "nope", Email: "b@example.org", Status: digest.DeliverySent},
			"BadStatus":      {Edition: e.ID, Email: "b@example.org", Status: "bounced"},
			"BadEmail":       {Edition: e.ID, Email: "b@exa\r\nmple.org", Status: digest.DeliverySent},
		} {
			err := s.RecordDeliveries([]digest.Delivery{{Edition: e.ID, Email: "a@example.org", Status: digest.DeliverySent}, bad})
			if err == nil {
				t.Errorf("%s: batch succeeded", name)
			}
			if name == "UnknownEdition" && !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: err = %v, want ErrNotFound", name, err)
			}
		}
		checkCounts(t, s, e.ID, 0, 0, 0, digest.EditionSending)
		if pending, _ := s.PendingDeliveries(e.ID, "", 0); len(pending) != 2 {
			t.Errorf("pending = %v after failed batches, want both", deliveryEmails(pending))
		}
	})

	t.Run("ManyInOneBatch", func(t *testing.T) {
		s, _ := mustOpen(t)
		e := newEdition(t, s, "daily", t0)
		var all []string
		for i := range 1000 {
			all = append(all, fmt.Sprintf("r%04d@example.org", i))
		}
		if n, err := s.QueueDeliveries(e.ID, all); err != nil || n != 1000 {
			t.Fatalf("QueueDeliveries = %d, %v", n, err)
		}
		for after := ""; ; {
			page, err := s.PendingDeliveries(e.ID, after, 300)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for i := range page {
				page[i].Status = digest.DeliverySent
			}
			if err := s.RecordDeliveries(page); err != nil {
				t.Fatal(err)
			}
			after = page[len(page)-1].Email
		}
		checkCounts(t, s, e.ID, 1000, 0, 0, digest.EditionSent)
	})
}

func checkCounts(t *testing.T, s *Store, id string, sent, failed, suppressed int, status digest.EditionStatus) digest.Edition {
	t.Helper()
	e, err := s.GetEdition(id)
	if err != nil {
		t.Fatal(err)
	}
	if e.Sent != sent || e.Failed != failed || e.Suppressed != suppressed || e.Status != status {
		t.Errorf("sent, failed, suppressed, status = %d, %d, %d, %q; want %d, %d, %d, %q",
			e.Sent, e.Failed, e.Suppressed, e.Status, sent, failed, suppressed, status)
	}
	return e
}

func TestSentArticles(t *testing.T) {
	s, clock := mustOpen(t)
	clock.Set(t0.Add(-48 * time.Hour))
	newEdition(t, s, "daily", clock.Now(), "old1")
	clock.Set(t0.Add(-24 * time.Hour))
	e := digest.Edition{ID: "daily-y", List: "daily"}
	e.Stories.Top = []digest.Pick{{Article: digest.Article{ID: "top1"}}}
	e.Stories.Recent = []digest.Pick{{Article: digest.Article{ID: "recent1"}}}
	if _, err := s.CreateEdition(e); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0)
	newEdition(t, s, "weekly", t0, "weekly1")

	got, err := s.SentArticles("daily", t0.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"top1": true, "recent1": true}
	if len(got) != len(want) || !got["top1"] || !got["recent1"] {
		t.Errorf("SentArticles(daily, -24h) = %v, want %v", got, want)
	}
	got, _ = s.SentArticles("daily", time.Time{})
	if len(got) != 3 || !got["old1"] {
		t.Errorf("SentArticles(daily, all) = %v, want old1, top1, recent1", got)
	}
	got, _ = s.SentArticles("", t0)
	if len(got) != 1 || !got["weekly1"] {
		t.Errorf("SentArticles(any, t0) = %v, want weekly1", got)
	}
}
