package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Local is the schedule word for local-time delivery: each subscriber at
// their own hour in their own time zone.
const Local = "local"

// Spec is a parsed list schedule: a cron spec or Local.
type Spec struct {
	Text  string
	Local bool
	cron  cron.Schedule
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSpec parses a list's schedule: "local", or a five-field cron spec
// with an optional "CRON_TZ=Zone " (or "TZ=Zone ") prefix and descriptors
// such as "@daily". The error says what is wrong with it.
func ParseSpec(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Spec{}, errors.New("schedule: empty (use a cron spec such as \"CRON_TZ=Europe/Paris 0 7 * * *\", or \"local\")")
	}
	if s == Local {
		return Spec{Text: s, Local: true}, nil
	}
	sched, err := parser.Parse(s)
	if err != nil {
		return Spec{}, fmt.Errorf("schedule %q: %w", s, err)
	}
	return Spec{Text: s, cron: sched}, nil
}

// Next returns the first moment of the schedule strictly after t; zero
// for Local.
func (s Spec) Next(t time.Time) time.Time {
	if s.cron == nil {
		return time.Time{}
	}
	return s.cron.Next(t)
}

// Latest returns the last moment of a cron schedule in (after, now], or
// zero if there is none. It is what a tick at now should run, given that
// the list last ran for the slot after.
func (s Spec) Latest(after, now time.Time) time.Time {
	if s.cron == nil {
		return time.Time{}
	}
	var last time.Time
	// Look back at most 40 days: a stale list needs only its latest slot.
	if lb := now.Add(-40 * 24 * time.Hour); after.Before(lb) {
		after = lb
	}
	for t := s.cron.Next(after); !t.IsZero() && !t.After(now); t = s.cron.Next(t) {
		last = t
	}
	return last
}

// Decision is what a tick decided for one cron list.
type Decision int

// Decisions.
const (
	Wait    Decision = iota // nothing due
	Run                     // the slot is due: send its edition
	TooLate                 // the slot was missed by more than the maximum lateness: skip it
)

func (d Decision) String() string {
	return [...]string{"wait", "run", "too late"}[d]
}

// Decide says what to do at now for a list with spec whose last handled
// slot is last (zero: never ran; then only slots from since count, e.g.
// the list's creation). A slot missed by no more than maxLateness (after
// downtime) runs late; an older one is skipped, never sent stale.
func Decide(spec Spec, last, since, now time.Time, maxLateness time.Duration) (Decision, time.Time) {
	if spec.Local {
		return Wait, time.Time{}
	}
	from := last
	if from.IsZero() {
		from = since.Add(-time.Nanosecond)
	}
	slot := spec.Latest(from, now)
	switch {
	case slot.IsZero():
		return Wait, slot
	case now.Sub(slot) > maxLateness:
		return TooLate, slot
	}
	return Run, slot
}
