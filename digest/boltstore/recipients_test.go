package boltstore

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

func TestConfirmedEmails(t *testing.T) {
	s, clk := mustOpen(t)
	if err := s.PutList(subscribers.List{Name: "daily", From: "a@example.org"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		email string
		st    subscribers.Status
	}{{"c@example.org", subscribers.Confirmed}, {"a@example.org", subscribers.Confirmed}, {"b@example.org", subscribers.Pending}, {"d@example.org", subscribers.Confirmed}} {
		sub := subscribers.Subscriber{Email: e.email}
		sub.SetStatus("daily", e.st, clk.Now())
		if err := s.PutSubscriber(sub); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ConfirmedEmails("daily", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a@example.org", "c@example.org"}; !equalStrings(got, want) {
		t.Errorf("page 1: got %v, want %v", got, want)
	}
	got, err = s.ConfirmedEmails("daily", "c@example.org", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d@example.org"}; !equalStrings(got, want) {
		t.Errorf("page 2: got %v, want %v", got, want)
	}
}

func TestSecretIsCreatedOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "newsdigest.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Secret()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || bytes.Equal(a, make([]byte, 32)) {
		t.Fatalf("secret %x: want 32 random bytes", a)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	b, err := s2.Secret()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("secret changed across reopen")
	}
}

// trickySubscribers mention the lists' names everywhere a byte filter
// would see them, hold statuses on other lists and strings that
// encoding/json escapes.
func trickySubscribers(now time.Time) []subscribers.Subscriber {
	mk := func(email, name string, lists map[string]subscribers.Status) subscribers.Subscriber {
		sub := subscribers.Subscriber{Email: email, Name: name, Frequency: subscribers.Daily}
		for l, st := range lists {
			sub.SetStatus(l, st, now)
		}
		return sub
	}
	subs := []subscribers.Subscriber{
		mk("a@example.org", "Ann", map[string]subscribers.Status{"daily": subscribers.Confirmed}),
		mk("b@example.org", `"daily":{"status":"confirmed"}`, map[string]subscribers.Status{"weekly": subscribers.Confirmed}),
		mk("c@example.org", "daily", map[string]subscribers.Status{"daily": subscribers.Pending, "weekly": subscribers.Confirmed}),
		mk("d@example.org", "Dörte & Co <d>", map[string]subscribers.Status{"daily": subscribers.Confirmed, "ünï": subscribers.Confirmed}),
		mk("e@example.org", "", map[string]subscribers.Status{"ünï": subscribers.Unsubscribed, "daily": subscribers.Bounced}),
		mk("f&g@example.org", "日本語", map[string]subscribers.Status{"daily": subscribers.Confirmed}),
		mk("h@example.org", "", nil),
		mk("i@example.org", "", map[string]subscribers.Status{"dailyx": subscribers.Confirmed, "xdaily": subscribers.Confirmed}),
	}
	subs[2].Topics = []string{"daily", "weekly"}
	subs[4].Attrs = map[string]string{"daily": "confirmed", "ünï": "confirmed"}
	subs[6].Attrs = map[string]string{`"daily":`: `{"status":"confirmed"}`}
	subs[7].Consent = subscribers.Consent{Time: now, IP: "192.0.2.7", Source: "daily"}
	return subs
}

// TestConfirmedEmailsTricky compares ConfirmedEmails and CountSubscribers,
// which read only what they need of each record, with Subscribers, which
// decodes every record whole.
func TestConfirmedEmailsTricky(t *testing.T) {
	s, clk := mustOpen(t)
	for _, sub := range trickySubscribers(clk.Now()) {
		if err := s.PutSubscriber(sub); err != nil {
			t.Fatal(err)
		}
	}
	for _, list := range []string{"daily", "weekly", "ünï", "dailyx", "none", ""} {
		full, err := s.Subscribers(SubscriberQuery{List: list, Status: subscribers.Confirmed})
		if err != nil {
			t.Fatal(err)
		}
		want := emails(full)
		got, err := s.ConfirmedEmails(list, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if !equalStrings(got, want) {
			t.Errorf("ConfirmedEmails(%q) = %v, want %v", list, got, want)
		}
		if list == "daily" && !equalStrings(got, []string{"a@example.org", "d@example.org", "f&g@example.org"}) {
			t.Errorf("ConfirmedEmails(daily) = %v", got)
		}
		for _, st := range []subscribers.Status{"", subscribers.Confirmed, subscribers.Pending, subscribers.Bounced} {
			full, err := s.Subscribers(SubscriberQuery{List: list, Status: st})
			if err != nil {
				t.Fatal(err)
			}
			n, err := s.CountSubscribers(list, st)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(full) {
				t.Errorf("CountSubscribers(%q, %q) = %d, want %d", list, st, n, len(full))
			}
		}
		// Paging gives the same addresses.
		var paged []string
		after := ""
		for {
			page, err := s.ConfirmedEmails(list, after, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1]
		}
		if !equalStrings(paged, want) {
			t.Errorf("ConfirmedEmails(%q) by pages of 1 = %v, want %v", list, paged, want)
		}
	}
}

// TestConfirmedEmailsBadRecord checks that a record encoding/json refuses
// fails the page with its error, as when every record was decoded whole,
// and that one that does not mention the list is not read.
func TestConfirmedEmailsBadRecord(t *testing.T) {
	s, clk := mustOpen(t)
	sub := subscribers.Subscriber{Email: "a@example.org"}
	sub.SetStatus("daily", subscribers.Confirmed, clk.Now())
	if err := s.PutSubscriber(sub); err != nil {
		t.Fatal(err)
	}
	put := func(key, raw string) {
		t.Helper()
		if err := s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketSubscribers).Put([]byte(key), []byte(raw))
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("b@example.org", `{"email":"b@example.org","lists":{"weekly":{"status":"confirmed"}},"created":"not a time"}`)
	got, err := s.ConfirmedEmails("daily", "", 0)
	if err != nil || !equalStrings(got, []string{"a@example.org"}) {
		t.Fatalf("ConfirmedEmails = %v, %v; want [a@example.org]", got, err)
	}
	put("c@example.org", `{"email":"c@example.org","lists":{"daily":{"status":"confirmed"}},"created":"not a time"}`)
	_, err = s.ConfirmedEmails("daily", "", 0)
	_, werr := s.Subscribers(SubscriberQuery{List: "daily", Status: subscribers.Confirmed})
	if err == nil || werr == nil || err.Error() != werr.Error() || !strings.Contains(err.Error(), `decode record "c@example.org"`) {
		t.Errorf("ConfirmedEmails error %v; want %v, naming the record", err, werr)
	}
	// A record whose address encoding/json must unescape.
	put("c@example.org", `{"email":"c\u0040example.org","lists":{"daily":{"status":"confirmed"}}}`)
	got, err = s.ConfirmedEmails("daily", "", 0)
	if err != nil || !equalStrings(got, []string{"a@example.org", "c@example.org"}) {
		t.Errorf("ConfirmedEmails = %v, %v; want [a@example.org c@example.org]", got, err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSubscribers).Delete([]byte("c@example.org"))
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPendingRecipientsFields checks what PendingRecipients gives of a
// subscriber: what a send uses, and only the edition's membership.
func TestPendingRecipientsFields(t *testing.T) {
	s, clk := mustOpen(t)
	now := clk.Now()
	subs := trickySubscribers(now)
	subs[3].Topics, subs[3].Timezone, subs[3].SendHour, subs[3].Frequency = []string{"Sport"}, "Europe/Paris", 7, subscribers.Weekly
	subs[3].Attrs = map[string]string{"weekday": "fri"}
	subs[3].Consent = subscribers.Consent{Time: now, IP: "192.0.2.1", Source: "form"}
	var all []string
	for _, sub := range subs {
		if err := s.PutSubscriber(sub); err != nil {
			t.Fatal(err)
		}
		all = append(all, sub.Email)
	}
	all = append(all, "gone@example.org")
	ed := digest.Edition{ID: "daily-1", List: "daily"}
	if _, err := s.CreateEdition(ed); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueDeliveries(ed.ID, all); err != nil {
		t.Fatal(err)
	}
	got := map[string]subscribers.Subscriber{}
	if _, err := s.PendingRecipients(ed.ID, "", 0, func(d digest.Delivery, sub subscribers.Subscriber, _ string) {
		got[d.Email] = sub
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Errorf("saw %d recipients, want %d", len(got), len(all))
	}
	for _, email := range all {
		want := subscribers.Subscriber{}
		if email != "gone@example.org" {
			full, err := s.GetSubscriber(email)
			if err != nil {
				t.Fatal(err)
			}
			want = full
			want.Consent, want.Created, want.Updated = subscribers.Consent{}, time.Time{}, time.Time{}
			want.Lists = nil
			if m, ok := full.Lists["daily"]; ok {
				want.Lists = map[string]subscribers.Membership{"daily": m}
			}
		}
		if !reflect.DeepEqual(got[email], want) {
			t.Errorf("%s:\n got %#v\nwant %#v", email, got[email], want)
		}
	}
	if got["d@example.org"].Attrs["weekday"] != "fri" || got["d@example.org"].Timezone != "Europe/Paris" {
		t.Errorf("d@example.org: %+v: weekday and time zone missing", got["d@example.org"])
	}
}

// TestEditionList checks the edition list PendingRecipients reads once
// per run: it follows a changed record and fails as getEdition does.
func TestEditionList(t *testing.T) {
	s, _ := mustOpen(t)
	if _, err := s.CreateEdition(digest.Edition{ID: "e1", List: "daily"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateEdition(digest.Edition{ID: "e2", List: "weekly"}); err != nil {
		t.Fatal(err)
	}
	read := func(id string) (string, error) {
		var list string
		err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			list, err = s.editionList(tx, id)
			if err == nil {
				e, gerr := getEdition(tx, id)
				if gerr != nil || e.List != list {
					t.Errorf("editionList(%s) = %q; getEdition: %q, %v", id, list, e.List, gerr)
				}
			}
			return err
		})
		return list, err
	}
	for _, step := range []struct {
		id, want string
		change   func()
	}{
		{id: "e1", want: "daily"},
		{id: "e1", want: "daily"},
		{id: "e2", want: "weekly"},
		{id: "e1", want: "other", change: func() {
			if _, err := s.UpdateEdition("e1", func(e *digest.Edition) error { e.List = "other"; return nil }); err != nil {
				t.Fatal(err)
			}
		}},
		{id: "e1", want: "other"},
	} {
		if step.change != nil {
			step.change()
		}
		if got, err := read(step.id); err != nil || got != step.want {
			t.Errorf("editionList(%s) = %q, %v; want %q", step.id, got, err, step.want)
		}
	}
	if _, err := read("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("editionList(missing): %v, want ErrNotFound", err)
	}
	// Bad counters fail the cached read as they fail getEdition.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEditionCounts).Put([]byte("e1"), []byte{0xff})
	}); err != nil {
		t.Fatal(err)
	}
	_, err := read("e1")
	var werr error
	s.db.View(func(tx *bolt.Tx) error { _, werr = getEdition(tx, "e1"); return nil })
	if err == nil || werr == nil || err.Error() != werr.Error() {
		t.Errorf("editionList with bad counters: %v, want %v", err, werr)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketEditionCounts).Delete([]byte("e1")); err != nil {
			return err
		}
		return tx.Bucket(bucketEditions).Put([]byte("e1"), []byte(`{"id":"e1","list":5}`))
	}); err != nil {
		t.Fatal(err)
	}
	_, err = read("e1")
	s.db.View(func(tx *bolt.Tx) error { _, werr = getEdition(tx, "e1"); return nil })
	if err == nil || werr == nil || err.Error() != werr.Error() {
		t.Errorf("editionList of a bad record: %v, want %v", err, werr)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketEditions).Delete([]byte("e1")) }); err != nil {
		t.Fatal(err)
	}
}
