package boltstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
)

// TestEditionCounts checks that the counters kept apart from the edition
// record (counts.go) are what every reader sees, that a record without
// them (a database written before they existed) keeps its own, and that a
// record rewritten whole elsewhere does not lose them.
func TestEditionCounts(t *testing.T) {
	s, _ := mustOpen(t)
	// An edition as an older newsdigest left it: counters in the record,
	// no counters key, one record sent and one queued.
	old := digest.Edition{ID: "daily-old", List: "daily", Status: digest.EditionSending, Created: t0, Sent: 7, Failed: 2}
	if _, err := s.CreateEdition(old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueDeliveries(old.ID, []string{"a@example.org", "b@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if _, ok, err := getCounts(tx, old.ID); ok || err != nil {
			t.Errorf("counters key of a never-recorded edition: present %v, err %v; want none", ok, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries([]digest.Delivery{{Edition: old.ID, Email: "a@example.org", Status: digest.DeliveryFailed}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetEdition(old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sent != 7 || got.Failed != 3 || got.Status != digest.EditionSending {
		t.Fatalf("after one failure: sent %d failed %d status %s; want 7, 3, sending", got.Sent, got.Failed, got.Status)
	}
	// The record itself still holds the old counters: the key wins.
	if err := s.db.View(func(tx *bolt.Tx) error {
		var rec digest.Edition
		if err := json.Unmarshal(tx.Bucket(bucketEditions).Get([]byte(old.ID)), &rec); err != nil {
			return err
		}
		if rec.Failed != 2 {
			t.Errorf("record's own Failed = %d; want 2 (a commit must not rewrite the record)", rec.Failed)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A whole-record rewrite (UpdateEdition) keeps the counters; a retry
	// moves one from Failed to Sent and the last one finishes the edition.
	if _, err := s.UpdateEdition(old.ID, func(e *digest.Edition) error { e.Intro = "Hello"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries([]digest.Delivery{
		{Edition: old.ID, Email: "a@example.org", Status: digest.DeliverySent},
		{Edition: old.ID, Email: "b@example.org", Status: digest.DeliverySkipped},
	}); err != nil {
		t.Fatal(err)
	}
	list, err := s.Editions("daily")
	if err != nil || len(list) != 1 {
		t.Fatalf("Editions = %v, %v; want one", list, err)
	}
	for _, e := range []digest.Edition{list[0], must(s.GetEdition(old.ID))} {
		if e.Sent != 8 || e.Failed != 2 || e.Skipped != 1 || e.Suppressed != 0 || e.Status != digest.EditionSent || e.Intro != "Hello" || e.Finished.IsZero() {
			t.Errorf("finished edition = sent %d failed %d skipped %d suppressed %d status %s intro %q finished %v; want 8 2 1 0 sent Hello set",
				e.Sent, e.Failed, e.Skipped, e.Suppressed, e.Status, e.Intro, e.Finished)
		}
	}
	// A record rewritten whole without its counters key (as QueueLocal
	// does) is read again: marked sent with a queued record left, the next
	// commit takes it back to sending, counters intact.
	if _, err := s.QueueDeliveries(old.ID, []string{"c@example.org", "d@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		e, err := getEdition(tx, old.ID)
		if err != nil {
			return err
		}
		e.Status = digest.EditionSent
		return putJSON(tx.Bucket(bucketEditions), []byte(old.ID), e)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries([]digest.Delivery{{Edition: old.ID, Email: "c@example.org", Status: digest.DeliverySuppressed}}); err != nil {
		t.Fatal(err)
	}
	if e := must(s.GetEdition(old.ID)); e.Status != digest.EditionSending || !e.Finished.IsZero() || e.Sent != 8 || e.Suppressed != 1 {
		t.Errorf("after a foreign rewrite: status %s finished %v sent %d suppressed %d; want sending, zero, 8, 1", e.Status, e.Finished, e.Sent, e.Suppressed)
	}
	// A damaged counters key is reported, naming the edition.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEditionCounts).Put([]byte(old.ID), []byte{countsVersion, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetEdition(old.ID); err == nil {
		t.Error("GetEdition with damaged counters: no error")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// EditionStatus reads what GetEdition would say of the status and the
// pause reason, before and after deliveries are recorded and the record is
// rewritten.
func TestEditionStatus(t *testing.T) {
	s, _ := mustOpen(t)
	if _, _, err := s.EditionStatus("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown edition: %v, want ErrNotFound", err)
	}
	e := digest.Edition{ID: "daily-1", List: "daily", Status: digest.EditionSending, Created: t0,
		Stories: digest.Selection{Top: []digest.Pick{{Article: digest.Article{ID: "a1", Title: "Tides"}}}}}
	if _, err := s.CreateEdition(e); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueDeliveries(e.ID, []string{"a@example.org", "b@example.org", "c@example.org"}); err != nil {
		t.Fatal(err)
	}
	check := func(when string, wantStatus digest.EditionStatus, wantReason string) {
		t.Helper()
		st, reason, err := s.EditionStatus(e.ID)
		full, ferr := s.GetEdition(e.ID)
		if err != nil || ferr != nil || st != wantStatus || reason != wantReason || st != full.Status {
			t.Errorf("%s: EditionStatus %s %q %v (GetEdition %s, %v); want %s %q", when, st, reason, err, full.Status, ferr, wantStatus, wantReason)
		}
	}
	check("created", digest.EditionSending, "")
	if err := s.RecordDeliveries([]digest.Delivery{{Edition: e.ID, Email: "a@example.org", Status: digest.DeliverySent}}); err != nil {
		t.Fatal(err)
	}
	check("after a delivery", digest.EditionSending, "")
	if _, err := s.UpdateEdition(e.ID, func(x *digest.Edition) error {
		x.Status, x.Reason = digest.EditionPaused, "paused by the night editor"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check("paused", digest.EditionPaused, "paused by the night editor")
	if err := s.RecordDeliveries([]digest.Delivery{{Edition: e.ID, Email: "b@example.org", Status: digest.DeliverySent}}); err != nil {
		t.Fatal(err)
	}
	check("paused, then a delivery", digest.EditionPaused, "paused by the night editor")
	if err := s.RecordDeliveries([]digest.Delivery{{Edition: e.ID, Email: "c@example.org", Status: digest.DeliverySent}}); err != nil {
		t.Fatal(err)
	}
	check("the last delivery", digest.EditionSent, "")
}

// FailedDeliveries lists the failed and suppressed records only, in email
// order, up to the limit.
func TestFailedDeliveries(t *testing.T) {
	s, _ := mustOpen(t)
	e := digest.Edition{ID: "daily-f", List: "daily", Status: digest.EditionSending, Created: t0}
	if _, err := s.CreateEdition(e); err != nil {
		t.Fatal(err)
	}
	var emails []string
	for i := range 30 {
		emails = append(emails, fmt.Sprintf("r%02d@example.org", i))
	}
	if _, err := s.QueueDeliveries(e.ID, emails); err != nil {
		t.Fatal(err)
	}
	var ds []digest.Delivery
	var want []string
	for i, em := range emails {
		st := digest.DeliverySent
		switch i % 7 {
		case 3:
			st = digest.DeliveryFailed
		case 5:
			st = digest.DeliverySuppressed
		case 6:
			continue // stays queued
		}
		if st != digest.DeliverySent {
			want = append(want, em)
		}
		ds = append(ds, digest.Delivery{Edition: e.ID, Email: em, Status: st, Reply: "550 5.1.1 no such user " + em})
	}
	if err := s.RecordDeliveries(ds); err != nil {
		t.Fatal(err)
	}
	got, err := s.FailedDeliveries(e.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var gotEmails []string
	for _, d := range got {
		gotEmails = append(gotEmails, d.Email)
		if !strings.Contains(d.Reply, d.Email) {
			t.Errorf("%s: reply %q not its own", d.Email, d.Reply)
		}
	}
	if fmt.Sprint(gotEmails) != fmt.Sprint(want) {
		t.Fatalf("failures %v, want %v", gotEmails, want)
	}
	if got, _ := s.FailedDeliveries(e.ID, 3); len(got) != 3 || got[2].Email != want[2] {
		t.Errorf("limit 3: %v", got)
	}
	if _, err := s.FailedDeliveries("nope", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown edition: %v", err)
	}
}
