package boltstore

import (
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"newsdigest/subscribers"
)

func member(st subscribers.Status) subscribers.Membership {
	return subscribers.Membership{Status: st}
}

func TestSubscriberCRUD(t *testing.T) {
	t.Run("AddAndGet", func(t *testing.T) {
		s, _ := mustOpen(t)
		err := s.AddSubscriber(subscribers.Subscriber{
			Email: "  Ann@Example.ORG ", Name: "Ann", Frequency: subscribers.Daily,
			Lists: map[string]subscribers.Membership{"daily": member(subscribers.Confirmed)},
		})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := s.GetSubscriber("ANN@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sub.Email, "ann@example.org"; got != want {
			t.Errorf("Email = %q, want %q", got, want)
		}
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(sub.ID) {
			t.Errorf("ID = %q, want 32 hex digits", sub.ID)
		}
		if !sub.Created.Equal(t0) || !sub.Updated.Equal(t0) {
			t.Errorf("Created, Updated = %v, %v; want %v", sub.Created, sub.Updated, t0)
		}
		if got := sub.Lists["daily"].Since; !got.Equal(t0) {
			t.Errorf("membership Since = %v, want %v", got, t0)
		}
		byID, err := s.GetSubscriberByID(sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := byID.Email, sub.Email; got != want {
			t.Errorf("GetSubscriberByID email = %q, want %q", got, want)
		}

		err = s.AddSubscriber(subscribers.Subscriber{Email: "ann@EXAMPLE.org"})
		if !errors.Is(err, ErrExists) {
			t.Errorf("second AddSubscriber = %v, want ErrExists", err)
		}
	})

	t.Run("IDsAreDistinct", func(t *testing.T) {
		s, _ := mustOpen(t)
		seen := map[string]bool{}
		for i := range 20 {
			if err := s.AddSubscriber(subscribers.Subscriber{Email: fmt.Sprintf("u%d@example.org", i)}); err != nil {
				t.Fatal(err)
			}
		}
		subs, _ := s.Subscribers(SubscriberQuery{})
		for _, sub := range subs {
			if seen[sub.ID] {
				t.Errorf("ID %s assigned twice", sub.ID)
			}
			seen[sub.ID] = true
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		s, clock := mustOpen(t)
		if err := s.PutSubscriber(subscribers.Subscriber{Email: "ann@example.org", Name: "Ann", Timezone: "Europe/Paris"}); err != nil {
			t.Fatal(err)
		}
		first, _ := s.GetSubscriber("ann@example.org")
		later := t0.Add(time.Hour)
		clock.Set(later)
		if err := s.PutSubscriber(subscribers.Subscriber{Email: "ann@example.org", Name: "Anne"}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetSubscriber("ann@example.org")
		if got.ID != first.ID || !got.Created.Equal(t0) || !got.Updated.Equal(later) {
			t.Errorf("after replace ID, Created, Updated = %s, %v, %v; want %s, %v, %v",
				got.ID, got.Created, got.Updated, first.ID, t0, later)
		}
		if got.Name != "Anne" || got.Timezone != "" {
			t.Errorf("after replace Name, Timezone = %q, %q; want \"Anne\", \"\" (a put replaces)", got.Name, got.Timezone)
		}
	})

	t.Run("PutWithAnotherSubscribersID", func(t *testing.T) {
		s, _ := mustOpen(t)
		s.AddSubscriber(subscribers.Subscriber{Email: "ann@example.org"})
		ann, _ := s.GetSubscriber("ann@example.org")
		err := s.PutSubscriber(subscribers.Subscriber{Email: "bob@example.org", ID: ann.ID})
		if !errors.Is(err, ErrExists) {
			t.Errorf("PutSubscriber with Ann's ID = %v, want ErrExists", err)
		}
		if _, err := s.GetSubscriber("bob@example.org"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Bob was stored anyway: %v", err)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		s, _ := mustOpen(t)
		for _, sub := range []subscribers.Subscriber{
			{Email: "not an address"},
			{Email: "a@example.org\r\nBcc: x@evil.example"},
			{Email: "a@example.org", Lists: map[string]subscribers.Membership{"daily": member("maybe")}},
			{Email: "a@example.org", SendHour: 24},
			{Email: "a@example.org", Frequency: "hourly"},
			{Email: "a@example.org", ID: "../../etc"},
		} {
			if err := s.PutSubscriber(sub); err == nil {
				t.Errorf("PutSubscriber(%+v) succeeded", sub)
			}
		}
		if n, _ := s.CountSubscribers("", ""); n != 0 {
			t.Errorf("%d invalid subscribers stored", n)
		}
		if _, err := s.GetSubscriber("nobody"); !errors.Is(err, subscribers.ErrInvalidEmail) {
			t.Errorf("GetSubscriber(nobody) = %v, want ErrInvalidEmail", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s, _ := mustOpen(t)
		s.AddSubscriber(subscribers.Subscriber{Email: "ann@example.org"})
		ann, _ := s.GetSubscriber("ann@example.org")
		if err := s.DeleteSubscriber("Ann@example.org"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSubscriber("ann@example.org"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSubscriber after delete = %v, want ErrNotFound", err)
		}
		if _, err := s.GetSubscriberByID(ann.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSubscriberByID after delete = %v, want ErrNotFound", err)
		}
		if err := s.DeleteSubscriber("ann@example.org"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete = %v, want ErrNotFound", err)
		}
	})
}

// importGiven is what a CSV row with name, status and attribute columns gives.
const importGiven = subscribers.GivenName | subscribers.GivenStatus | subscribers.GivenAttrs

func rows(given subscribers.Fields, subs ...subscribers.Subscriber) []subscribers.Row {
	out := make([]subscribers.Row, len(subs))
	for i, s := range subs {
		out[i] = subscribers.Row{Line: i + 2, Subscriber: s, Given: given}
	}
	return out
}

func TestUpsertSubscribers(t *testing.T) {
	existing := subscribers.Subscriber{
		Email: "ann@example.org", Name: "Ann", Timezone: "Europe/Paris", SendHour: 7, Frequency: subscribers.Daily,
		Lists: map[string]subscribers.Membership{
			"daily":  {Status: subscribers.Confirmed, Since: t0.Add(-48 * time.Hour)},
			"weekly": {Status: subscribers.Confirmed, Since: t0.Add(-48 * time.Hour)},
		},
		Attrs: map[string]string{"plan": "free", "city": "Paris"},
	}
	incoming := subscribers.Subscriber{
		Email: "ANN@example.org", Name: "Ann Smith", // Timezone, SendHour, Frequency empty: kept
		Lists: map[string]subscribers.Membership{
			"weekly": {Status: subscribers.Unsubscribed},
			"daily":  {Status: subscribers.Confirmed}, // same status: Since kept
			"tech":   {Status: subscribers.Pending},
		},
		Attrs: map[string]string{"plan": "paid"},
	}
	newcomer := subscribers.Subscriber{Email: "bob@example.org", Name: "Bob"}

	setup := func(t *testing.T) (*Store, subscribers.Subscriber) {
		s, clock := mustOpen(t)
		if err := s.AddSubscriber(existing); err != nil {
			t.Fatal(err)
		}
		before, _ := s.GetSubscriber(existing.Email)
		clock.Set(t0.Add(time.Hour))
		return s, before
	}

	t.Run("Update", func(t *testing.T) {
		s, before := setup(t)
		added, updated, skipped, err := s.UpsertSubscribers(rows(importGiven, incoming, newcomer), true)
		if err != nil {
			t.Fatal(err)
		}
		if added != 1 || updated != 1 || skipped != 0 {
			t.Errorf("added, updated, skipped = %d, %d, %d; want 1, 1, 0", added, updated, skipped)
		}
		got, _ := s.GetSubscriber("ann@example.org")
		if got.ID != before.ID || !got.Created.Equal(before.Created) {
			t.Errorf("ID, Created = %s, %v; want kept %s, %v", got.ID, got.Created, before.ID, before.Created)
		}
		if !got.Updated.Equal(t0.Add(time.Hour)) {
			t.Errorf("Updated = %v, want %v", got.Updated, t0.Add(time.Hour))
		}
		if got.Name != "Ann Smith" || got.Timezone != "Europe/Paris" || got.SendHour != 7 || got.Frequency != subscribers.Daily {
			t.Errorf("Name, Timezone, SendHour, Frequency = %q, %q, %d, %q; want new name, the rest kept",
				got.Name, got.Timezone, got.SendHour, got.Frequency)
		}
		wantLists := map[string]subscribers.Membership{
			"daily":  {Status: subscribers.Confirmed, Since: t0.Add(-48 * time.Hour)},
			"weekly": {Status: subscribers.Unsubscribed, Since: t0.Add(time.Hour)},
			"tech":   {Status: subscribers.Pending, Since: t0.Add(time.Hour)},
		}
		if len(got.Lists) != len(wantLists) {
			t.Errorf("Lists = %v, want %v", got.Lists, wantLists)
		}
		for name, want := range wantLists {
			if m := got.Lists[name]; m.Status != want.Status || !m.Since.Equal(want.Since) {
				t.Errorf("Lists[%s] = %+v, want %+v", name, m, want)
			}
		}
		if got.Attrs["plan"] != "paid" || got.Attrs["city"] != "Paris" {
			t.Errorf("Attrs = %v, want plan=paid (new wins) and city=Paris (kept)", got.Attrs)
		}
		if _, err := s.GetSubscriber("bob@example.org"); err != nil {
			t.Errorf("newcomer: %v", err)
		}
		if incoming.Lists["tech"].Since != (time.Time{}) {
			t.Error("UpsertSubscribers changed the caller's map")
		}
	})

	t.Run("Skip", func(t *testing.T) {
		s, before := setup(t)
		added, updated, skipped, err := s.UpsertSubscribers(rows(importGiven, incoming, newcomer), false)
		if err != nil {
			t.Fatal(err)
		}
		if added != 1 || updated != 0 || skipped != 1 {
			t.Errorf("added, updated, skipped = %d, %d, %d; want 1, 0, 1", added, updated, skipped)
		}
		got, _ := s.GetSubscriber("ann@example.org")
		if got.Name != "Ann" || got.Lists["weekly"].Status != subscribers.Confirmed || !got.Updated.Equal(before.Updated) {
			t.Errorf("skipped subscriber changed: %+v", got)
		}
	})

	t.Run("UnchangedCountsAsSkipped", func(t *testing.T) {
		s, before := setup(t)
		same := subscribers.Subscriber{Email: existing.Email, Name: existing.Name,
			Lists: map[string]subscribers.Membership{"daily": member(subscribers.Confirmed)}}
		added, updated, skipped, err := s.UpsertSubscribers(rows(subscribers.GivenName, same), true)
		if err != nil {
			t.Fatal(err)
		}
		if added != 0 || updated != 0 || skipped != 1 {
			t.Errorf("added, updated, skipped = %d, %d, %d; want 0, 0, 1", added, updated, skipped)
		}
		if got, _ := s.GetSubscriber(existing.Email); !got.Updated.Equal(before.Updated) {
			t.Errorf("Updated = %v, want unchanged %v", got.Updated, before.Updated)
		}
	})

	t.Run("DuplicateInBatch", func(t *testing.T) {
		s, _ := mustOpen(t)
		added, updated, skipped, err := s.UpsertSubscribers(rows(subscribers.GivenName,
			subscribers.Subscriber{Email: "c@example.org", Name: "C"}, subscribers.Subscriber{Email: "C@example.org", Name: "Cee"},
		), true)
		if err != nil {
			t.Fatal(err)
		}
		if added != 1 || updated != 1 || skipped != 0 {
			t.Errorf("added, updated, skipped = %d, %d, %d; want 1, 1, 0", added, updated, skipped)
		}
		if got, _ := s.GetSubscriber("c@example.org"); got.Name != "Cee" {
			t.Errorf("Name = %q, want the later row's", got.Name)
		}
	})

	t.Run("DefaultsAndOptionStatusDoNotOverwrite", func(t *testing.T) {
		// A file without send_hour/frequency columns, imported with
		// --update --list weekly --list tech: the row carries defaults and
		// the options' status, none of them given by the file.
		s, clock := mustOpen(t)
		prior := existing
		prior.Frequency = subscribers.Weekly
		prior.Lists = map[string]subscribers.Membership{
			"weekly": {Status: subscribers.Unsubscribed, Since: t0},
			"tech":   {Status: subscribers.Pending, Since: t0},
		}
		if err := s.AddSubscriber(prior); err != nil {
			t.Fatal(err)
		}
		clock.Set(t0.Add(time.Hour))
		in := subscribers.Subscriber{Email: existing.Email, Name: "Ann B", SendHour: -1, Frequency: subscribers.Daily,
			Lists: map[string]subscribers.Membership{
				"weekly": {Status: subscribers.Confirmed}, "tech": {Status: subscribers.Confirmed}, "new": {Status: subscribers.Confirmed},
			}}
		if _, _, _, err := s.UpsertSubscribers(rows(subscribers.GivenName, in), true); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetSubscriber(existing.Email)
		if got.SendHour != 7 || got.Frequency != subscribers.Weekly || got.Name != "Ann B" {
			t.Errorf("SendHour, Frequency, Name = %d, %q, %q; want 7, weekly kept and the new name", got.SendHour, got.Frequency, got.Name)
		}
		for name, want := range map[string]subscribers.Status{"weekly": subscribers.Unsubscribed, "tech": subscribers.Confirmed, "new": subscribers.Confirmed} {
			if got.Lists[name].Status != want {
				t.Errorf("Lists[%s] = %s, want %s", name, got.Lists[name].Status, want)
			}
		}
	})

	t.Run("ExplicitStatusNeverResubscribes", func(t *testing.T) {
		// An old export re-imported with --update after people left.
		s, _ := mustOpen(t)
		for email, st := range map[string]subscribers.Status{"u@example.org": subscribers.Unsubscribed, "b@example.org": subscribers.Bounced, "c@example.org": subscribers.Complained, "p@example.org": subscribers.Pending} {
			sub := subscribers.Subscriber{Email: email}
			sub.SetStatus("daily", st, t0)
			if err := s.AddSubscriber(sub); err != nil {
				t.Fatal(err)
			}
		}
		var in []subscribers.Subscriber
		for _, email := range []string{"u@example.org", "b@example.org", "c@example.org", "p@example.org"} {
			sub := subscribers.Subscriber{Email: email}
			sub.SetStatus("daily", subscribers.Confirmed, t0)
			in = append(in, sub)
		}
		if _, _, _, err := s.UpsertSubscribers(rows(subscribers.GivenStatus, in...), true); err != nil {
			t.Fatal(err)
		}
		for email, want := range map[string]subscribers.Status{"u@example.org": subscribers.Unsubscribed, "b@example.org": subscribers.Bounced, "c@example.org": subscribers.Complained, "p@example.org": subscribers.Confirmed} {
			if got, _ := s.GetSubscriber(email); got.StatusOn("daily") != want {
				t.Errorf("%s: %s, want %s", email, got.StatusOn("daily"), want)
			}
		}
	})

	t.Run("InvalidEntryRollsBackBatch", func(t *testing.T) {
		s, _ := mustOpen(t)
		_, _, _, err := s.UpsertSubscribers(rows(0, newcomer, subscribers.Subscriber{Email: "broken"}), true)
		if err == nil {
			t.Fatal("batch with an invalid address succeeded")
		}
		if want := "batch entry 2"; !regexp.MustCompile(want).MatchString(err.Error()) {
			t.Errorf("error = %q, want it to name %q", err, want)
		}
		if _, err := s.GetSubscriber(newcomer.Email); !errors.Is(err, ErrNotFound) {
			t.Errorf("valid entry of a failed batch was stored: %v", err)
		}
	})
}

func TestSubscribersQuery(t *testing.T) {
	s, _ := mustOpen(t)
	var batch []subscribers.Subscriber
	for i := range 25 {
		sub := subscribers.Subscriber{Email: fmt.Sprintf("u%02d@example.org", i), Lists: map[string]subscribers.Membership{}}
		switch {
		case i%5 == 0:
			sub.Lists["daily"] = member(subscribers.Unsubscribed)
		case i%2 == 0:
			sub.Lists["daily"] = member(subscribers.Confirmed)
		default:
			sub.Lists["weekly"] = member(subscribers.Confirmed)
		}
		batch = append(batch, sub)
	}
	if _, _, _, err := s.UpsertSubscribers(rows(0, batch...), false); err != nil {
		t.Fatal(err)
	}

	t.Run("Paging", func(t *testing.T) {
		var all []string
		after := ""
		pages := 0
		for {
			page, err := s.Subscribers(SubscriberQuery{After: after, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			all = append(all, emails(page)...)
			if len(page) < 10 {
				break
			}
			after = page[len(page)-1].Email
		}
		if got, want := pages, 3; got != want {
			t.Errorf("pages = %d, want %d", got, want)
		}
		if got, want := len(all), 25; got != want {
			t.Fatalf("paged through %d subscribers, want %d", got, want)
		}
		for i, e := range all {
			if want := fmt.Sprintf("u%02d@example.org", i); e != want {
				t.Errorf("subscriber %d = %s, want %s", i, e, want)
			}
		}
	})

	t.Run("AfterIsExclusiveAndNeedNotExist", func(t *testing.T) {
		page, _ := s.Subscribers(SubscriberQuery{After: "u03@example.org", Limit: 2})
		if got, want := emails(page), []string{"u04@example.org", "u05@example.org"}; !equalStrings(got, want) {
			t.Errorf("after u03 = %v, want %v", got, want)
		}
		page, _ = s.Subscribers(SubscriberQuery{After: "u03zzz", Limit: 1})
		if got, want := emails(page), []string{"u04@example.org"}; !equalStrings(got, want) {
			t.Errorf("after u03zzz = %v, want %v", got, want)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			q     SubscriberQuery
			count int
			first string
		}{
			{"ListConfirmed", SubscriberQuery{List: "daily", Status: subscribers.Confirmed}, 10, "u02@example.org"},
			{"ListAnyStatus", SubscriberQuery{List: "daily"}, 15, "u00@example.org"},
			{"StatusAnyList", SubscriberQuery{Status: subscribers.Confirmed}, 20, "u01@example.org"},
			{"Unsubscribed", SubscriberQuery{Status: subscribers.Unsubscribed}, 5, "u00@example.org"},
			{"NoSuchList", SubscriberQuery{List: "tech"}, 0, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.Subscribers(tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != tc.count {
					t.Fatalf("got %d subscribers, want %d", len(got), tc.count)
				}
				if tc.count > 0 && got[0].Email != tc.first {
					t.Errorf("first = %s, want %s", got[0].Email, tc.first)
				}
				n, err := s.CountSubscribers(tc.q.List, tc.q.Status)
				if err != nil {
					t.Fatal(err)
				}
				if n != tc.count {
					t.Errorf("CountSubscribers = %d, want %d", n, tc.count)
				}
			})
		}
	})

	t.Run("CountAll", func(t *testing.T) {
		if n, _ := s.CountSubscribers("", ""); n != 25 {
			t.Errorf("CountSubscribers(all) = %d, want 25", n)
		}
	})

	t.Run("BadQuery", func(t *testing.T) {
		if _, err := s.Subscribers(SubscriberQuery{Status: "maybe"}); err == nil {
			t.Error("unknown status accepted")
		}
		if _, err := s.Subscribers(SubscriberQuery{Limit: -1}); err == nil {
			t.Error("negative limit accepted")
		}
	})
}

func TestSubscribersQueryOddListName(t *testing.T) {
	// List names with characters that encoding/json escapes still match.
	s, _ := mustOpen(t)
	s.AddSubscriber(subscribers.Subscriber{Email: "a@example.org",
		Lists: map[string]subscribers.Membership{"a&b<c>": member(subscribers.Confirmed)}})
	if n, err := s.CountSubscribers("a&b<c>", subscribers.Confirmed); err != nil || n != 1 {
		t.Errorf("CountSubscribers = %d, %v; want 1, nil", n, err)
	}
}
