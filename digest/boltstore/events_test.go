package boltstore

import (
	"errors"
	"slices"
	"testing"
	"time"

	"newsdigest/subscribers"
)

func TestEvents(t *testing.T) {
	s, _ := mustOpen(t)
	t.Run("NoneIsEmpty", func(t *testing.T) {
		evs, err := s.Events("nobody@example.org")
		if err != nil || len(evs) != 0 {
			t.Fatalf("Events = %v, %v; want none", evs, err)
		}
	})
	t.Run("RecordAndCount", func(t *testing.T) {
		for i, k := range []subscribers.EventKind{subscribers.EventSoftBounce, subscribers.EventSoftBounce, subscribers.EventHardBounce} {
			ev := subscribers.Event{Kind: k, At: t0.Add(time.Duration(i) * time.Hour), Status: "4.2.2"}
			if err := s.RecordEvent(" Ann@Example.org", ev); err != nil {
				t.Fatal(err)
			}
		}
		// Another address's events stay apart, even with a shared prefix.
		if err := s.RecordEvent("ann@example.org.uk", subscribers.Event{Kind: subscribers.EventSoftBounce}); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events("ann@example.org")
		if err != nil {
			t.Fatal(err)
		}
		var kinds []subscribers.EventKind
		for _, ev := range evs {
			kinds = append(kinds, ev.Kind)
		}
		if want := []subscribers.EventKind{"soft_bounce", "soft_bounce", "hard_bounce"}; !slices.Equal(kinds, want) {
			t.Errorf("kinds = %v, want %v", kinds, want)
		}
		n, err := s.CountEvents("ann@example.org", subscribers.EventSoftBounce, t0.Add(30*time.Minute))
		if err != nil || n != 1 {
			t.Errorf("CountEvents since +30m = %d, %v; want 1", n, err)
		}
		if err := s.DeleteEvents("ann@example.org"); err != nil {
			t.Fatal(err)
		}
		if evs, _ := s.Events("ann@example.org"); len(evs) != 0 {
			t.Errorf("after DeleteEvents: %v", evs)
		}
		if evs, _ := s.Events("ann@example.org.uk"); len(evs) != 1 {
			t.Errorf("other address lost its events: %v", evs)
		}
	})
	t.Run("Capped", func(t *testing.T) {
		for i := range MaxEventsPerSubscriber + 5 {
			if err := s.RecordEvent("cap@example.org", subscribers.Event{Kind: subscribers.EventSoftBounce, Detail: string(rune('a' + i%26))}); err != nil {
				t.Fatal(err)
			}
		}
		evs, _ := s.Events("cap@example.org")
		if len(evs) != MaxEventsPerSubscriber || evs[0].Detail != "f" {
			t.Errorf("got %d events, first %q; want %d, oldest dropped", len(evs), evs[0].Detail, MaxEventsPerSubscriber)
		}
	})
	t.Run("ErrInvalidEmail", func(t *testing.T) {
		if err := s.RecordEvent("not an address", subscribers.Event{}); !errors.Is(err, subscribers.ErrInvalidEmail) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestMarkSubscriber(t *testing.T) {
	s, _ := mustOpen(t)
	sub := subscribers.Subscriber{Email: "bo@example.org", Lists: map[string]subscribers.Membership{
		"daily": {Status: subscribers.Confirmed}, "weekly": {Status: subscribers.Unsubscribed}, "news": {Status: subscribers.Pending},
	}}
	if err := s.AddSubscriber(sub); err != nil {
		t.Fatal(err)
	}
	changed, err := s.MarkSubscriber("bo@example.org", nil, subscribers.Bounced, t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"daily", "news"}; !slices.Equal(changed, want) {
		t.Errorf("changed = %v, want %v", changed, want)
	}
	got, _ := s.GetSubscriber("bo@example.org")
	for list, want := range map[string]subscribers.Status{"daily": "bounced", "news": "bounced", "weekly": "unsubscribed"} {
		if got.StatusOn(list) != want {
			t.Errorf("%s: %s, want %s", list, got.StatusOn(list), want)
		}
	}
	// A complaint on one list does not touch a bounced membership.
	changed, err = s.MarkSubscriber("bo@example.org", []string{"daily"}, subscribers.Complained, t0)
	if err != nil || len(changed) != 0 {
		t.Errorf("changed = %v, %v; want none", changed, err)
	}
	if _, err := s.MarkSubscriber("ghost@example.org", nil, subscribers.Bounced, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown subscriber: %v, want ErrNotFound", err)
	}
}

func TestDeleteSubscriberTakesTheirEvents(t *testing.T) {
	s, _ := mustOpen(t)
	for _, email := range []string{"ann@example.org", "bob@example.org"} {
		if err := s.AddSubscriber(subscribers.Subscriber{Email: email}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordEvent(email, subscribers.Event{Kind: subscribers.EventHardBounce, At: t0, Status: "5.1.1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSubscriber("ann@example.org"); err != nil {
		t.Fatal(err)
	}
	if evs, err := s.Events("ann@example.org"); err != nil || len(evs) != 0 {
		t.Errorf("ann's events after deletion: %v, %v; want none", evs, err)
	}
	if evs, err := s.Events("bob@example.org"); err != nil || len(evs) != 1 {
		t.Errorf("bob's events: %v, %v; want his one event kept", evs, err)
	}
}
