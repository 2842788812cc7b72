package main

import (
	"fmt"
	"time"

	"newsdigest/digest/delivery"
	"newsdigest/digest/scheduler"
)

// ScheduleConfig is the scheduler of serve and the per-subscriber story
// history of every send.
type ScheduleConfig struct {
	// Run makes serve send lists on their schedules; false: only manual
	// sends (CLI, admin API).
	Run bool `toml:"run"`
	// Tick is how often the scheduler looks at the lists.
	Tick Duration `toml:"tick"`
	// History is how long a story sent to a subscriber keeps them from
	// getting it again; "0s" turns the never-repeat history off.
	History Duration `toml:"history"`
	// DefaultHour is the local hour of readers of a "local" list who did
	// not choose one.
	DefaultHour int `toml:"default_hour"`
}

func defaultScheduleConfig() ScheduleConfig {
	return ScheduleConfig{
		Run:         true,
		Tick:        Duration{scheduler.DefaultEvery},
		History:     Duration{delivery.DefaultHistory},
		DefaultHour: scheduler.DefaultHour,
	}
}

// engineHistory is Engine.History for the config: 0 in the config means
// off, which the engine spells as a negative value.
func (c ScheduleConfig) engineHistory() time.Duration {
	if c.History.Duration == 0 {
		return -1
	}
	return c.History.Duration
}

func (c Config) validateSchedule() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Schedule.Tick.Duration < time.Second || c.Schedule.Tick.Duration > 10*time.Minute {
		bad("schedule.tick", "%s is not between 1s and 10m", c.Schedule.Tick.Duration)
	}
	if c.Schedule.History.Duration < 0 {
		bad("schedule.history", "must not be negative (\"0s\" turns it off)")
	}
	if c.Schedule.DefaultHour < 0 || c.Schedule.DefaultHour > 23 {
		bad("schedule.default_hour", "%d is not an hour (0–23)", c.Schedule.DefaultHour)
	}
	return errs
}
