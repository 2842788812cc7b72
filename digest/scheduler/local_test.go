package scheduler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"strings"
	"testing"
	"time"

	"newsdigest/digest/scheduler"
	"newsdigest/subscribers"
)

var zones = []string{
	"UTC", "Europe/London", "Europe/Paris", "Europe/Helsinki", "Europe/Moscow",
	"Asia/Dubai", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Dhaka", "Asia/Bangkok",
	"Asia/Shanghai", "Asia/Tokyo", "Australia/Adelaide", "Australia/Sydney", "Pacific/Auckland",
	"Pacific/Chatham", "America/St_Johns", "America/Sao_Paulo", "America/New_York", "Pacific/Honolulu",
}

// TestSimulatedDayEachReaderOnceAtTheirHour drives the scheduler with the
// real engine, store and an in-process SMTP server over a simulated day,
// in 5-minute ticks of a fake clock: 1,000 readers spread over 20 time
// zones (whole, half and quarter-hour offsets) each receive exactly one
// digest, dated at their own local hour (the fake clock's minute). Halfway through, the scheduler
// is replaced by a new one on the same store (a restart).
func TestSimulatedDayEachReaderOnceAtTheirHour(t *testing.T) {
	// No slot falls in the 10 minutes before 12:50 UTC (slots are at :00,
	// :15, :30 and :45 UTC), so nobody is due at the start and each
	// reader's hour comes exactly once in the next 24 hours.
	start := at("2026-11-26T12:50:00Z")
	e := newEnv(t, start)
	e.list(t, "local", "local", start.Add(-time.Hour))
	l, _ := e.st.GetList("local")
	l.MaxLateness = 10 * time.Minute
	if err := e.st.PutList(l); err != nil {
		t.Fatal(err)
	}
	e.stories(t, start.Add(24*time.Hour), 30, "day") // published over the day before the end

	rng := rand.New(rand.NewPCG(1, 2))
	type want struct {
		loc  *time.Location
		hour int
	}
	wants := map[string]want{}
	var rows []subscribers.Row
	for i := range 1000 {
		zone := zones[i%len(zones)]
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		sub := subscribers.Subscriber{
			Email: fmt.Sprintf("reader%04d@example.org", i), Timezone: zone,
			SendHour: rng.IntN(24), Frequency: subscribers.Daily,
		}
		if i%10 == 0 {
			sub.SendHour = -1 // the default hour
		}
		sub.SetStatus("local", subscribers.Confirmed, start)
		rows = append(rows, subscribers.Row{Subscriber: sub})
		h := sub.SendHour
		if h < 0 {
			h = scheduler.DefaultHour
		}
		wants[sub.Email] = want{loc, h}
	}
	if _, _, _, err := e.st.UpsertSubscribers(rows, false); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	s := e.scheduler()
	s.Reconcile = 6 * time.Hour // nobody changes; keep the test quick
	ticks := 0
	// Every 5 minutes from 12:50: every :00, :15, :30 and :45 is a tick.
	for now := start; now.Before(start.Add(24 * time.Hour)); now = now.Add(5 * time.Minute) {
		if now.Equal(start.Add(12 * time.Hour)) {
			s = e.scheduler() // a restart
			s.Reconcile = 6 * time.Hour
		}
		e.clock.set(now)
		s.Tick(ctx)
		s.Wait()
		ticks++
	}

	got := map[string]int{}
	for _, m := range e.srv.Messages() {
		msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
		if err != nil {
			t.Fatal(err)
		}
		date, err := msg.Header.Date()
		if err != nil {
			t.Fatal(err)
		}
		to := m.To[0]
		got[to]++
		w := wants[to]
		if lt := date.In(w.loc); lt.Hour() != w.hour || lt.Minute() != 0 {
			t.Errorf("%s (%s, hour %d) got their digest at %s local", to, w.loc, w.hour, lt.Format("15:04"))
		}
	}
	bad := 0
	for email := range wants {
		if got[email] != 1 {
			bad++
			if bad <= 10 {
				t.Errorf("%s (%s, hour %d) got %d digests, want 1", email, wants[email].loc, wants[email].hour, got[email])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of 1000 readers did not get exactly one digest", bad)
	}
	t.Logf("%d ticks, %d messages", ticks, len(e.srv.Messages()))
}

// TestLocalCatchUpAfterDowntime: readers whose hour passed during a
// downtime get the edition on start when within the maximum lateness, and
// are skipped (and logged) when further back; a reader who changes their
// hour is moved in the index.
func TestLocalCatchUpAfterDowntime(t *testing.T) {
	start := at("2026-11-27T05:00:00Z")
	e := newEnv(t, start)
	e.list(t, "local", "local", start.Add(-48*time.Hour))
	e.stories(t, start, 5, "f")
	for _, r := range []struct {
		email string
		hour  int
	}{{"seven@example.org", 7}, {"eight@example.org", 8}, {"twelve@example.org", 12}} {
		sub := subscribers.Subscriber{Email: r.email, Timezone: "UTC", SendHour: r.hour, Frequency: subscribers.Daily}
		sub.SetStatus("local", subscribers.Confirmed, start)
		if err := e.st.AddSubscriber(sub); err != nil {
			t.Fatal(err)
		}
	}
	s := e.scheduler()
	s.Tick(context.Background()) // indexes everyone: 07:00, 08:00, 12:00
	s.Wait()
	// Down from 05:00 to 10:30: 07:00 is 3h30 back (too late), 08:00 2h30
	// (inside the default 3h).
	e.clock.set(at("2026-11-27T10:30:00Z"))
	s = e.scheduler()
	s.Tick(context.Background())
	s.Wait()
	got := e.received()
	if got["seven@example.org"] != 0 || got["eight@example.org"] != 1 || got["twelve@example.org"] != 0 {
		t.Errorf("after the downtime: %v, want only eight@", got)
	}
	if !strings.Contains(e.logs.String(), "missed by more than the maximum lateness") {
		t.Errorf("the missed reader was not logged:\n%s", e.logs)
	}
	e.clock.set(at("2026-11-27T12:00:00Z"))
	s.Tick(context.Background())
	s.Wait()
	if got := e.received(); got["twelve@example.org"] != 1 || got["seven@example.org"] != 0 {
		t.Errorf("at noon: %v", got)
	}
	// seven@ is next due tomorrow at 07:00.
	st, _, err := e.st.ReaderState("local", mustSub(t, e, "seven@example.org").ID)
	if err != nil || !st.Next.Equal(at("2026-11-28T07:00:00Z")) {
		t.Errorf("seven@ state %+v %v, want next 2026-11-28T07:00Z", st, err)
	}
}

func mustSub(t *testing.T, e *env, email string) subscribers.Subscriber {
	t.Helper()
	sub, err := e.st.GetSubscriber(email)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}
