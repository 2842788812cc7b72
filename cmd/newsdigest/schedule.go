package main

import (
	"newsdigest/digest"
	"newsdigest/digest/scheduler"
)

// schedulerComponent builds the daemon's scheduler: lists on their
// schedules ([schedule] run), catch-up and resume after a restart, and
// editors' sends through the admin API. It returns the scheduler (for the
// admin API's send endpoint) and its component, or no component when
// schedule.run is false (manual sends still work).
func (m *Main) schedulerComponent(o *ops) (*scheduler.Scheduler, *component, error) {
	e, err := m.engine("")
	if err != nil {
		return nil, nil, err
	}
	e.Log = m.log.With("component", "delivery")
	e.Metrics = o.met
	hour := m.cfg.Schedule.DefaultHour
	s := &scheduler.Scheduler{
		Store: m.store, Engine: e, Clock: digest.SystemClock{},
		Log:         m.log.With("component", "scheduler"),
		Every:       m.cfg.Schedule.Tick.Duration,
		DefaultHour: &hour,
		History:     m.cfg.Schedule.History.Duration,
	}
	if !m.cfg.Schedule.Run {
		// Manual sends only: the component delivers triggered editions
		// and stops them gracefully, but looks at no schedule.
		return s, &component{name: "sender", run: s.Serve}, nil
	}
	return s, &component{name: "scheduler", run: s.Run}, nil
}
