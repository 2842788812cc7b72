package boltstore

import (
	"errors"
	"sync"
	"testing"
	"time"

	"newsdigest/subscribers"
)

func TestUpdateSubscriber(t *testing.T) {
	s, clock := mustOpen(t)
	if err := s.PutSubscriber(subscribers.Subscriber{Email: "Ann@Example.org", Name: "Ann", SendHour: -1,
		Lists: map[string]subscribers.Membership{"daily": member(subscribers.Pending)}}); err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetSubscriber("ann@example.org")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		clock.Set(t0.Add(time.Hour))
		got, err := s.UpdateSubscriber("ANN@example.org", func(sub *subscribers.Subscriber) error {
			sub.SetStatus("daily", subscribers.Confirmed, clock.Now())
			sub.SetStatus("weekly", subscribers.Confirmed, time.Time{})
			sub.Timezone = "Europe/Paris"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		again, _ := s.GetSubscriber("ann@example.org")
		if got.ID != stored.ID || !got.Created.Equal(stored.Created) || !got.Updated.Equal(t0.Add(time.Hour)) ||
			got.StatusOn("daily") != subscribers.Confirmed || got.Timezone != "Europe/Paris" ||
			!got.Lists["weekly"].Since.Equal(t0.Add(time.Hour)) {
			t.Errorf("returned %+v", got)
		}
		if again.Updated != got.Updated || again.StatusOn("weekly") != subscribers.Confirmed {
			t.Errorf("stored %+v, returned %+v", again, got)
		}
		byID, err := s.GetSubscriberByID(stored.ID)
		if err != nil || byID.Email != "ann@example.org" {
			t.Errorf("by id: %v %+v", err, byID)
		}
	})
	t.Run("UnchangedIsNotWritten", func(t *testing.T) {
		before, _ := s.GetSubscriber("ann@example.org")
		clock.Set(t0.Add(2 * time.Hour))
		got, err := s.UpdateSubscriberByID(stored.ID, func(sub *subscribers.Subscriber) error {
			sub.SetStatus("daily", subscribers.Confirmed, clock.Now()) // already: no change
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		after, _ := s.GetSubscriber("ann@example.org")
		if !got.Updated.Equal(before.Updated) || !after.Updated.Equal(before.Updated) {
			t.Errorf("Updated moved: %v → %v (returned %v)", before.Updated, after.Updated, got.Updated)
		}
	})
	t.Run("ErrFromFn", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := s.UpdateSubscriber("ann@example.org", func(sub *subscribers.Subscriber) error {
			sub.Name = "Changed"
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		if got, _ := s.GetSubscriber("ann@example.org"); got.Name != "Ann" {
			t.Errorf("written despite the error: %q", got.Name)
		}
	})
	t.Run("ErrIDOrAddressChanged", func(t *testing.T) {
		for name, fn := range map[string]func(*subscribers.Subscriber){
			"ID":    func(sub *subscribers.Subscriber) { sub.ID = "other" },
			"Email": func(sub *subscribers.Subscriber) { sub.Email = "bob@example.org" },
		} {
			if _, err := s.UpdateSubscriber("ann@example.org", func(sub *subscribers.Subscriber) error { fn(sub); return nil }); err == nil {
				t.Errorf("%s change accepted", name)
			}
		}
		if _, err := s.GetSubscriber("bob@example.org"); !errors.Is(err, ErrNotFound) {
			t.Errorf("bob: %v", err)
		}
		if _, err := s.GetSubscriberByID("other"); !errors.Is(err, ErrNotFound) {
			t.Errorf("id other: %v", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		_, err := s.UpdateSubscriber("ann@example.org", func(sub *subscribers.Subscriber) error {
			sub.SendHour = 24
			return nil
		})
		if err == nil {
			t.Fatal("send hour 24 accepted")
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		called := false
		fn := func(*subscribers.Subscriber) error { called = true; return nil }
		if _, err := s.UpdateSubscriber("nobody@example.org", fn); !errors.Is(err, ErrNotFound) {
			t.Errorf("by address: %v", err)
		}
		if _, err := s.UpdateSubscriberByID("00112233445566778899aabbccddeeff", fn); !errors.Is(err, ErrNotFound) {
			t.Errorf("by id: %v", err)
		}
		if _, err := s.UpdateSubscriber("not an address", fn); !errors.Is(err, subscribers.ErrInvalidEmail) {
			t.Errorf("bad address: %v", err)
		}
		if called {
			t.Error("fn called for a missing subscriber")
		}
	})
}

// TestUpdateSubscriberNoLostUpdate has a second writer start while the
// first one's fn runs, and gives it every chance to read the record
// before the first one writes: with fn's read and the write in one
// transaction it cannot, so both changes are in the final record. (With a
// read and a PutSubscriber in two transactions, the second writer reads
// the old record during the wait and overwrites the first one's list.)
func TestUpdateSubscriberNoLostUpdate(t *testing.T) {
	s, _ := mustOpen(t)
	if err := s.PutSubscriber(subscribers.Subscriber{Email: "ann@example.org", SendHour: -1}); err != nil {
		t.Fatal(err)
	}
	sub, _ := s.GetSubscriber("ann@example.org")
	var wg sync.WaitGroup
	var errB error
	var sawA bool
	bRead := make(chan struct{})
	_, errA := s.UpdateSubscriberByID(sub.ID, func(a *subscribers.Subscriber) error {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errB = s.UpdateSubscriber("ann@example.org", func(b *subscribers.Subscriber) error {
				close(bRead)
				sawA = b.StatusOn("a") == subscribers.Confirmed
				b.SetStatus("b", subscribers.Confirmed, time.Time{})
				return nil
			})
		}()
		select {
		case <-bRead:
			return errors.New("the second writer read the record inside the first one's transaction")
		case <-time.After(200 * time.Millisecond): // its chance to read, were it able to
		}
		a.SetStatus("a", subscribers.Confirmed, time.Time{})
		return nil
	})
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	got, _ := s.GetSubscriber("ann@example.org")
	if !sawA || got.StatusOn("a") != subscribers.Confirmed || got.StatusOn("b") != subscribers.Confirmed {
		t.Errorf("lists %v (second writer saw the first's change: %v): want a and b", got.Lists, sawA)
	}
}
