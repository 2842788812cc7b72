package schedule

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return loc
}

func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		name, zone string
		y          int
		m          time.Month
		d, hour    int
		want       string // RFC 3339 in UTC
	}{
		{"UTC", "UTC", 2026, 11, 27, 7, "2026-11-27T07:00:00Z"},
		{"NewYorkWinter", "America/New_York", 2026, 11, 27, 7, "2026-11-27T12:00:00Z"},
		{"NewYorkSummer", "America/New_York", 2026, 7, 1, 7, "2026-07-01T11:00:00Z"},
		// 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT; 02:00 does
		// not exist and goes out at 03:00 EDT (07:00 UTC).
		{"NewYorkSpringForward", "America/New_York", 2026, 3, 8, 2, "2026-03-08T07:00:00Z"},
		{"NewYorkSpringForwardLater", "America/New_York", 2026, 3, 8, 7, "2026-03-08T11:00:00Z"},
		// 2026-11-01: 01:00 happens twice (EDT then EST); the first one.
		{"NewYorkFallBack", "America/New_York", 2026, 11, 1, 1, "2026-11-01T05:00:00Z"},
		{"NewYorkFallBackAfter", "America/New_York", 2026, 11, 1, 7, "2026-11-01T12:00:00Z"},
		// Auckland: DST ends 2026-04-05 (03:00 NZDT → 02:00 NZST), starts
		// 2026-09-27 (02:00 NZST → 03:00 NZDT).
		{"AucklandSpringForward", "Pacific/Auckland", 2026, 9, 27, 2, "2026-09-26T14:00:00Z"},
		{"AucklandFallBack", "Pacific/Auckland", 2026, 4, 5, 2, "2026-04-04T13:00:00Z"},
		{"AucklandMorning", "Pacific/Auckland", 2026, 11, 27, 7, "2026-11-26T18:00:00Z"},
		{"Kolkata", "Asia/Kolkata", 2026, 11, 27, 7, "2026-11-27T01:30:00Z"},
		{"Kathmandu", "Asia/Kathmandu", 2026, 11, 27, 7, "2026-11-27T01:15:00Z"},
		{"Midnight", "Asia/Kathmandu", 2026, 11, 27, 0, "2026-11-26T18:15:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Slot(mustLoc(t, tc.zone), tc.y, tc.m, tc.d, tc.hour).UTC().Format(time.RFC3339)
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDue(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	ktm := mustLoc(t, "Asia/Kathmandu")
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name     string
		r        Reader
		now      string
		wantDue  bool
		wantDate string
	}{
		{"BeforeHour", Reader{Loc: ny, Hour: 7}, "2026-11-27T11:59:00Z", false, "2026-11-27"},
		{"AtHour", Reader{Loc: ny, Hour: 7}, "2026-11-27T12:00:00Z", true, "2026-11-27"},
		{"NewSubscriberLateInTheHour", Reader{Loc: ny, Hour: 10}, "2026-11-27T15:20:00Z", true, "2026-11-27"},
		{"NewSubscriberHourLongPast", Reader{Loc: ny, Hour: 1}, "2026-11-27T15:20:00Z", false, "2026-11-27"},
		{"InsideMaxLateness", Reader{Loc: ny, Hour: 7}, "2026-11-27T14:59:00Z", true, "2026-11-27"},
		{"OutsideMaxLateness", Reader{Loc: ny, Hour: 7}, "2026-11-27T15:01:00Z", false, "2026-11-27"},
		{"AlreadyHadToday", Reader{Loc: ny, Hour: 7, LastDate: "2026-11-27"}, "2026-11-27T12:30:00Z", false, "2026-11-27"},
		{"HadYesterday", Reader{Loc: ny, Hour: 7, LastDate: "2026-11-26"}, "2026-11-27T12:30:00Z", true, "2026-11-27"},
		{"SpringForwardTwoAM", Reader{Loc: ny, Hour: 2}, "2026-03-08T07:00:00Z", true, "2026-03-08"},
		{"SpringForwardBefore", Reader{Loc: ny, Hour: 2}, "2026-03-08T06:59:00Z", false, "2026-03-08"},
		{"FallBackSecondOneAM", Reader{Loc: ny, Hour: 1, LastDate: "2026-11-01"}, "2026-11-01T06:00:00Z", false, "2026-11-01"},
		{"WeeklyRightDay", Reader{Loc: ktm, Hour: 7, Weekly: true, Weekday: time.Friday}, "2026-11-27T01:15:00Z", true, "2026-11-27"},
		{"WeeklyWrongDay", Reader{Loc: ktm, Hour: 7, Weekly: true, Weekday: time.Monday}, "2026-11-27T01:15:00Z", false, "2026-11-27"},
		{"UTCDefault", Reader{Hour: 7}, "2026-11-27T07:00:00Z", true, "2026-11-27"},
		// 23:00 New York on the 27th missed by a restart at 01:30 on the
		// 28th: still within the lateness, for the 27th.
		{"CatchUpAcrossMidnight", Reader{Loc: ny, Hour: 23, LastDate: "2026-11-26"}, "2026-11-28T06:30:00Z", true, "2026-11-27"},
		{"CatchUpAcrossMidnightTooLate", Reader{Loc: ny, Hour: 23, LastDate: "2026-11-26"}, "2026-11-28T07:01:00Z", false, "2026-11-28"},
		{"CatchUpAcrossMidnightHadIt", Reader{Loc: ny, Hour: 23, LastDate: "2026-11-27"}, "2026-11-28T06:30:00Z", false, "2026-11-28"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, _, date := Due(tc.r, at(tc.now), DefaultMaxLateness)
			if due != tc.wantDue || date != tc.wantDate {
				t.Errorf("got due=%v date=%s, want due=%v date=%s", due, date, tc.wantDue, tc.wantDate)
			}
		})
	}
}

// TestSimulatedDaysSendOncePerDay walks a clock minute by minute over the
// DST days of 2026 in several zones and checks that each reader is due
// exactly once per local date, at their hour or the first valid moment
// after it.
func TestSimulatedDaysSendOncePerDay(t *testing.T) {
	for _, tc := range []struct {
		zone  string
		start string
		hours []int
	}{
		{"America/New_York", "2026-03-07T00:00:00Z", []int{0, 1, 2, 3, 7, 23}},
		{"America/New_York", "2026-10-31T00:00:00Z", []int{0, 1, 2, 7, 23}},
		{"Pacific/Auckland", "2026-09-25T00:00:00Z", []int{1, 2, 3, 7}},
		{"Pacific/Auckland", "2026-04-03T00:00:00Z", []int{1, 2, 3, 7}},
		{"Asia/Kolkata", "2026-11-26T00:00:00Z", []int{0, 7, 23}},
		{"Asia/Kathmandu", "2026-11-26T00:00:00Z", []int{0, 7, 23}},
		{"UTC", "2026-11-26T00:00:00Z", []int{0, 7, 23}},
	} {
		loc := mustLoc(t, tc.zone)
		start, _ := time.Parse(time.RFC3339, tc.start)
		for _, hour := range tc.hours {
			r := Reader{Loc: loc, Hour: hour}
			sends := map[string]int{}
			for now := start; now.Before(start.Add(72 * time.Hour)); now = now.Add(time.Minute) {
				if due, slot, date := Due(r, now, DefaultMaxLateness); due {
					sends[date]++
					r.LastDate = date
					if now.Sub(slot) > time.Minute {
						t.Errorf("%s hour %d: sent at %s, %s after its slot", tc.zone, hour, now.In(loc), now.Sub(slot))
					}
					if w := now.In(loc); w.Hour() < hour && !(w.Hour() == hour-1) {
						t.Errorf("%s hour %d: sent at local %s, before the hour", tc.zone, hour, w)
					}
				}
			}
			if len(sends) < 2 {
				t.Errorf("%s hour %d: sent on %d dates in 72 h, want at least 2", tc.zone, hour, len(sends))
			}
			for date, n := range sends {
				if n != 1 {
					t.Errorf("%s hour %d: %d sends on %s, want 1", tc.zone, hour, n, date)
				}
			}
		}
	}
}

func TestNext(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	now, _ := time.Parse(time.RFC3339, "2026-11-27T15:20:00Z") // 10:20 in New York, a Friday
	for _, tc := range []struct {
		name string
		r    Reader
		want string
	}{
		{"DueNow", Reader{Loc: ny, Hour: 10}, "2026-11-27T15:20:00Z"},
		{"LaterToday", Reader{Loc: ny, Hour: 18}, "2026-11-27T23:00:00Z"},
		{"Tomorrow", Reader{Loc: ny, Hour: 1}, "2026-11-28T06:00:00Z"},
		{"HadToday", Reader{Loc: ny, Hour: 10, LastDate: "2026-11-27"}, "2026-11-28T15:00:00Z"},
		{"WeeklyMonday", Reader{Loc: ny, Hour: 7, Weekly: true, Weekday: time.Monday}, "2026-11-30T12:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Next(tc.r, now, DefaultMaxLateness).UTC().Format(time.RFC3339); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
