package main

import (
	"newsdigest/digest"
	"newsdigest/digest/scheduler"
)

// schedulerComponent builds the daemon's scheduler: lists on their
// schedules ([schedule] run), catch-up and resume after a restart, and
// editors' sends through the admin API. It returns the scheduler (for the
// admin API's send endpoint), the sender every delivery of the daemon
// goes through (for the admin API's previews and resumes; see
// daemonSends) and the scheduler's component, which is the sender only
// when schedule.run is false (manual sends still work).
func (m *Main) schedulerComponent(o *ops) (*scheduler.Scheduler, *daemonSends, *component, error) {
	e, err := m.engine("")
	if err != nil {
		return nil, nil, nil, err
	}
	e.Log = m.log.With("component", "delivery")
	e.Metrics = o.met
	sends := &daemonSends{engine: e, store: m.store, log: m.log.With("component", "delivery")}
	hour := m.cfg.Schedule.DefaultHour
	s := &scheduler.Scheduler{
		Store: m.store, Engine: sends, Clock: digest.SystemClock{},
		Log:         m.log.With("component", "scheduler"),
		Every:       m.cfg.Schedule.Tick.Duration,
		DefaultHour: &hour,
		History:     m.cfg.Schedule.History.Duration,
	}
	if !m.cfg.Schedule.Run {
		// Manual sends only: the component delivers triggered editions
		// and stops them gracefully, but looks at no schedule.
		return s, sends, &component{name: "sender", run: s.Serve}, nil
	}
	return s, sends, &component{name: "scheduler", run: s.Run}, nil
}
