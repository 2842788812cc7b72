// Package schedule decides when editions go out: each list's cron spec
// (robfig/cron, CRON_TZ honoured), and local-time delivery, where each
// subscriber gets the edition at their own hour in their own time zone.
// The time computations are pure functions of an instant, so that tests
// drive them with any clock.
package schedule

import (
	"fmt"
	"time"
)

// DefaultMaxLateness is how late an edition may still go out after its
// moment (after downtime, or to a subscriber who just signed up).
const DefaultMaxLateness = 3 * time.Hour

// Slot returns the moment hour:00 local time on the given local date in
// loc, with daylight-saving days handled:
//   - a local time that does not exist (spring forward) is moved to the
//     first valid moment after it on the same day (02:00 → 03:00);
//   - a local time that occurs twice (fall back) is its first occurrence.
func Slot(loc *time.Location, year int, month time.Month, day, hour int) time.Time {
	t := time.Date(year, month, day, hour, 0, 0, 0, loc)
	lt := t.In(loc)
	if lt.Hour() != hour || lt.Day() != day {
		// Go normalized a wall time that does not exist; walk to the
		// first instant of that day whose wall clock is at or past hour.
		c := t.Add(-3 * time.Hour).Truncate(time.Minute)
		for range 6 * 60 {
			if w := c.In(loc); w.Day() == day && w.Hour() >= hour {
				return c
			}
			c = c.Add(time.Minute)
		}
		return t
	}
	// The first of two occurrences: an earlier instant with the same
	// wall clock.
	for _, back := range []time.Duration{time.Hour, 30 * time.Minute} {
		e := t.Add(-back).In(loc)
		if e.Hour() == hour && e.Minute() == 0 && e.Day() == day {
			return t.Add(-back)
		}
	}
	return t
}

// Reader is what local-time delivery needs to know about a subscriber.
type Reader struct {
	Loc      *time.Location
	Hour     int          // 0–23, local
	Weekly   bool         // weekly instead of daily
	Weekday  time.Weekday // for weekly readers
	LastDate string       // local date ("2006-01-02") of the last edition they got; "" = never
}

// LocalDate formats t's date in loc as "2006-01-02".
func LocalDate(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.DateOnly) }

// Due reports whether r should get an edition at now: their hour has come
// on their local date (and it is their weekday, for weekly readers), they
// have not had that date's edition, and the hour is no further back than
// maxLateness. It also returns the slot and the local date it is for.
// So a new subscriber at 10:20 with hour 10 is due at once, and one with
// hour 1 waits for tomorrow. A slot of the previous local date still
// counts for a reader who has had editions before, when it is within
// maxLateness: a 23:00 edition missed over midnight by a restart at 01:30
// goes out, for that date.
func Due(r Reader, now time.Time, maxLateness time.Duration) (due bool, slot time.Time, date string) {
	loc := r.Loc
	if loc == nil {
		loc = time.UTC
	}
	ln := now.In(loc)
	for back := 0; back <= 1; back++ {
		if back == 1 && r.LastDate == "" {
			break // a new reader starts with their local date
		}
		d := time.Date(ln.Year(), ln.Month(), ln.Day()-back, 12, 0, 0, 0, loc)
		s := Slot(loc, d.Year(), d.Month(), d.Day(), r.Hour)
		ds := d.Format(time.DateOnly)
		if back == 0 {
			slot, date = s, ds
		}
		switch {
		case r.LastDate != "" && r.LastDate >= ds:
			return false, slot, date // had it (and any earlier date)
		case r.Weekly && d.Weekday() != r.Weekday, now.Before(s), now.Sub(s) > maxLateness:
			continue
		}
		return true, s, ds
	}
	return false, slot, date
}

// Next returns the next moment at or after now when r will be due: now if
// due already, else the next slot on a later (or this) local date that
// they have not had. It looks at most eight days ahead.
func Next(r Reader, now time.Time, maxLateness time.Duration) time.Time {
	if due, _, _ := Due(r, now, maxLateness); due {
		return now
	}
	loc := r.Loc
	if loc == nil {
		loc = time.UTC
	}
	ln := now.In(loc)
	for i := 0; i <= 8; i++ {
		d := time.Date(ln.Year(), ln.Month(), ln.Day()+i, 12, 0, 0, 0, loc)
		slot := Slot(loc, d.Year(), d.Month(), d.Day(), r.Hour)
		date := slot.In(loc).Format(time.DateOnly)
		if slot.Before(now) || (r.LastDate != "" && r.LastDate >= date) || (r.Weekly && d.Weekday() != r.Weekday) {
			continue
		}
		return slot
	}
	panic(fmt.Sprintf("schedule: no slot within 8 days for %+v at %s", r, now))
}
