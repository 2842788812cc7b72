package boltstore

import (
	"errors"
	"testing"
	"time"

	"newsdigest/subscribers"
)

func TestLists(t *testing.T) {
	t.Run("CRUD", func(t *testing.T) {
		s, clock := mustOpen(t)
		if err := s.PutList(subscribers.List{Name: "weekly", Title: "Weekly", From: "News <news@example.org>"}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutList(subscribers.List{Name: "daily", Title: "Daily", From: "news@example.org"}); err != nil {
			t.Fatal(err)
		}
		l, err := s.GetList("daily")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := l.Title, "Daily"; got != want {
			t.Errorf("Title = %q, want %q", got, want)
		}
		if !l.Created.Equal(t0) {
			t.Errorf("Created = %v, want %v", l.Created, t0)
		}

		// Replacing keeps Created.
		clock.Set(t0.Add(time.Hour))
		if err := s.PutList(subscribers.List{Name: "daily", Title: "The Daily", From: "news@example.org"}); err != nil {
			t.Fatal(err)
		}
		l, _ = s.GetList("daily")
		if got, want := l.Title, "The Daily"; got != want {
			t.Errorf("Title after replace = %q, want %q", got, want)
		}
		if !l.Created.Equal(t0) {
			t.Errorf("Created after replace = %v, want %v", l.Created, t0)
		}

		ls, err := s.Lists()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, l := range ls {
			names = append(names, l.Name)
		}
		if got, want := names, []string{"daily", "weekly"}; !equalStrings(got, want) {
			t.Errorf("Lists() names = %v, want %v", got, want)
		}

		if err := s.DeleteList("weekly"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetList("weekly"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetList after delete = %v, want ErrNotFound", err)
		}
		if err := s.DeleteList("weekly"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteList = %v, want ErrNotFound", err)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		s, _ := mustOpen(t)
		for _, l := range []subscribers.List{
			{Name: "Bad Name", From: "news@example.org"},
			{Name: "daily"},
			{Name: "daily", From: "news@example.org\r\nBcc: x@evil.example"},
		} {
			if err := s.PutList(l); err == nil {
				t.Errorf("PutList(%+v) succeeded", l)
			}
		}
		if ls, _ := s.Lists(); len(ls) != 0 {
			t.Errorf("invalid lists were stored: %v", ls)
		}
	})

	t.Run("DeleteCascadesToSubscribers", func(t *testing.T) {
		s, clock := mustOpen(t)
		for _, name := range []string{"daily", "weekly"} {
			if err := s.PutList(subscribers.List{Name: name, From: "news@example.org"}); err != nil {
				t.Fatal(err)
			}
		}
		both := subscribers.Subscriber{Email: "both@example.org", Lists: map[string]subscribers.Membership{
			"daily": {Status: subscribers.Confirmed}, "weekly": {Status: subscribers.Pending},
		}}
		weeklyOnly := subscribers.Subscriber{Email: "weekly@example.org", Lists: map[string]subscribers.Membership{
			"weekly": {Status: subscribers.Confirmed},
		}}
		// A subscriber with an attribute named like the list is untouched.
		other := subscribers.Subscriber{Email: "other@example.org", Lists: map[string]subscribers.Membership{
			"daily": {Status: subscribers.Confirmed},
		}, Attrs: map[string]string{"weekly": "yes"}}
		for _, sub := range []subscribers.Subscriber{both, weeklyOnly, other} {
			if err := s.AddSubscriber(sub); err != nil {
				t.Fatal(err)
			}
		}
		later := t0.Add(time.Hour)
		clock.Set(later)
		if err := s.DeleteList("weekly"); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			email   string
			lists   []string
			updated time.Time
		}{
			{"both@example.org", []string{"daily"}, later},
			{"weekly@example.org", nil, later},
			{"other@example.org", []string{"daily"}, t0},
		} {
			sub, err := s.GetSubscriber(tc.email)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := listNames(sub), tc.lists; !equalStrings(got, want) {
				t.Errorf("%s lists = %v, want %v", tc.email, got, want)
			}
			if !sub.Updated.Equal(tc.updated) {
				t.Errorf("%s Updated = %v, want %v", tc.email, sub.Updated, tc.updated)
			}
		}
		if n, _ := s.CountSubscribers("weekly", ""); n != 0 {
			t.Errorf("CountSubscribers(weekly) = %d after delete, want 0", n)
		}
	})
}
