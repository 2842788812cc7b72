// Package scheduler sends lists' editions on their schedules: it wires
// the time rules of package schedule to the delivery engine and keeps its
// state in the store, so that it survives restarts and a restart never
// sends an edition twice.
//
// One tick loop serves every list; there is no cron goroutine per list or
// per subscriber. Each tick:
//
//   - a cron list (robfig/cron spec, CRON_TZ honoured) whose latest slot
//     is due and not yet handled runs its job: the edition of that slot is
//     built, recorded and delivered. A slot missed by more than the list's
//     maximum lateness (after downtime) is skipped and logged, never sent
//     stale; one missed by less goes out at once (catch-up).
//   - a local-time list (schedule "local") finds the readers due from its
//     next-send index (big-endian unix time + subscriber ID), queues them
//     on the edition of the current hour, records the local date they got
//     it for and their next time (schedule.Next) in the same transaction,
//     and delivers.
//
// Each list's job is wrapped with robfig/cron's chain: cron.Recover (a
// panic is logged, the scheduler goes on) and cron.SkipIfStillRunning (a
// tick while the list's previous job still runs skips it; the next tick
// tries again). The clock is injectable: tests call Tick with a fake
// clock and Wait, and never sleep.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/digest/schedule"
	"newsdigest/subscribers"
)

// Store is what the scheduler needs of storage (the bbolt store
// implements it).
type Store interface {
	Lists() ([]subscribers.List, error)
	GetList(name string) (subscribers.List, error)
	GetSubscriberByID(id string) (subscribers.Subscriber, error)
	ConfirmedSubscribers(list, after string, limit int) ([]subscribers.Subscriber, error)
	Editions(list string) ([]digest.Edition, error)

	GetListSchedule(list string) (schedule.ListState, error)
	PutListSchedule(list string, st schedule.ListState) error
	DueReaders(list string, now time.Time, limit int) ([]schedule.DueEntry, error)
	ReaderState(list, subID string) (schedule.ReaderState, bool, error)
	ReaderStates(list string) (map[string]schedule.ReaderState, error)
	SetReaders(list string, states map[string]*schedule.ReaderState) error
	QueueLocal(editionID, list string, qs []schedule.Queued) (int, error)
}

// Sender builds and delivers editions (*delivery.Engine).
type Sender interface {
	StartWith(list string, o delivery.StartOptions) (digest.Edition, bool, error)
	Trigger(list string, forceNew bool) (digest.Edition, error)
	Deliver(ctx context.Context, editionID string) (delivery.Result, error)
}

// Pruner drops old story history (optional; the bbolt store has it).
type Pruner interface {
	PruneHistory(before time.Time) (int, error)
}

// Defaults.
const (
	DefaultEvery     = 30 * time.Second
	DefaultHour      = 7
	DefaultReconcile = 5 * time.Minute
	// localBatch bounds the readers one local tick queues per list.
	localBatch = 5000
)

// Scheduler runs lists on their schedules. Fill the fields, then Run.
type Scheduler struct {
	Store  Store
	Engine Sender
	Clock  digest.Clock
	Log    *slog.Logger

	// Every is the tick interval of Run; default DefaultEvery.
	Every time.Duration
	// DefaultHour is the local hour of readers of a local-time list who
	// did not choose one (send hour -1); default DefaultHour (07:00).
	DefaultHour *int
	// Reconcile is how often (by Clock) a local-time list's index is
	// checked against its subscribers (new, changed, gone); default
	// DefaultReconcile. The first tick always does it.
	Reconcile time.Duration
	// History is the never-repeat retention; story history older than it
	// is pruned every few hours. 0: delivery.DefaultHistory.
	History time.Duration

	mu            sync.Mutex
	ctx           context.Context
	jobs          map[string]*listJob
	reconciled    map[string]time.Time
	pruned        time.Time
	resumeChecked map[string]bool
	wg            sync.WaitGroup
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Scheduler) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}

func (s *Scheduler) defaultHour() int {
	if s.DefaultHour != nil {
		return *s.DefaultHour
	}
	return DefaultHour
}

// MaxLateness returns a list's maximum lateness.
func MaxLateness(l subscribers.List) time.Duration {
	if l.MaxLateness > 0 {
		return l.MaxLateness
	}
	return schedule.DefaultMaxLateness
}

// Run ticks every s.Every until ctx ends, then waits for the running jobs
// (whose deliveries stop gracefully with ctx) and returns nil. The first
// tick runs at once: unfinished editions are resumed and missed slots
// caught up (within the maximum lateness).
func (s *Scheduler) Run(ctx context.Context) error {
	every := s.Every
	if every <= 0 {
		every = DefaultEvery
	}
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.Tick(ctx)
		select {
		case <-ctx.Done():
			s.Wait()
			return nil
		case <-t.C:
		}
	}
}

// Serve is Run without the schedule: it serves Trigger until ctx ends,
// then waits for the triggered deliveries (which stop gracefully with
// ctx). For a daemon that sends only when editors say so.
func (s *Scheduler) Serve(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	<-ctx.Done()
	s.Wait()
	return nil
}

// Wait waits for the jobs started by Tick and Trigger to finish.
func (s *Scheduler) Wait() { s.wg.Wait() }

// Tick looks at every list once at the clock's now and starts the jobs
// that are due, each in its own goroutine through its list's chain.
func (s *Scheduler) Tick(ctx context.Context) {
	now := s.now()
	lists, err := s.Store.Lists()
	if err != nil {
		s.log().Error("scheduler: reading lists", "err", err)
		return
	}
	s.mu.Lock()
	if s.ctx == nil {
		s.ctx = ctx
	}
	if s.resumeChecked == nil {
		s.resumeChecked = make(map[string]bool)
	}
	s.mu.Unlock()
	for _, l := range lists {
		s.mu.Lock()
		resume := !s.resumeChecked[l.Name]
		s.resumeChecked[l.Name] = true
		s.mu.Unlock()
		var run func(context.Context, time.Time)
		switch {
		case l.Schedule != "":
			spec, err := schedule.ParseSpec(l.Schedule)
			if err != nil {
				s.log().Error("scheduler: list has a bad schedule; fix it with 'newsdigest lists set'", "list", l.Name, "err", err)
				continue
			}
			if spec.Local {
				if !resume && !s.localDue(l, now) {
					continue
				}
				run = func(ctx context.Context, now time.Time) { s.runLocal(ctx, l, now, resume) }
			} else {
				if !resume && !s.cronDue(l, spec, now) {
					continue
				}
				run = func(ctx context.Context, now time.Time) { s.runCron(ctx, l, spec, now, resume) }
			}
		case resume:
			run = func(ctx context.Context, now time.Time) { s.resume(ctx, l, now) }
		default:
			continue
		}
		s.start(ctx, l.Name, now, run)
	}
	s.prune(now)
}

// listJob is a list's job: the chain-wrapped cron.Job and what its next
// run is to do.
type listJob struct {
	mu      sync.Mutex
	ctx     context.Context
	now     time.Time
	run     func(context.Context, time.Time)
	wrapped cron.Job
}

func (j *listJob) Run() {
	j.mu.Lock()
	ctx, now, run := j.ctx, j.now, j.run
	j.mu.Unlock()
	run(ctx, now)
}

func (s *Scheduler) start(ctx context.Context, list string, now time.Time, run func(context.Context, time.Time)) {
	s.mu.Lock()
	if s.jobs == nil {
		s.jobs = make(map[string]*listJob)
	}
	j := s.jobs[list]
	if j == nil {
		j = &listJob{}
		cl := cronLogger{s.log().With("list", list)}
		// SkipIfStillRunning outside Recover: robfig/cron v3.0.1's
		// SkipIfStillRunning releases its token without a defer, so a
		// panic passing through it would leave the list "still running"
		// for ever (TestJobPanicIsRecoveredAndRetried).
		j.wrapped = cron.NewChain(cron.SkipIfStillRunning(cl), cron.Recover(cl)).Then(j)
		s.jobs[list] = j
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// The job reads its run under the lock; SkipIfStillRunning lets
		// only one run at a time.
		j.mu.Lock()
		j.ctx, j.now, j.run = ctx, now, run
		j.mu.Unlock()
		j.wrapped.Run()
	}()
}

// cronLogger adapts slog to robfig/cron's Logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		c.l.Warn("scheduler: the list's previous run is still going; this tick skips it")
		return
	}
	c.l.Debug("scheduler: "+msg, kv...)
}

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("scheduler: "+msg, append(kv, "err", err)...)
}

func (s *Scheduler) cronDue(l subscribers.List, spec schedule.Spec, now time.Time) bool {
	st, err := s.Store.GetListSchedule(l.Name)
	if err != nil {
		s.log().Error("scheduler: reading schedule state", "list", l.Name, "err", err)
		return false
	}
	d, _ := schedule.Decide(spec, st.LastSlot, l.Created, now, MaxLateness(l))
	return d != schedule.Wait
}

// runCron is a cron list's job.
func (s *Scheduler) runCron(ctx context.Context, l subscribers.List, spec schedule.Spec, now time.Time, resume bool) {
	if resume {
		s.resume(ctx, l, now)
	}
	st, err := s.Store.GetListSchedule(l.Name)
	if err != nil {
		s.log().Error("scheduler: reading schedule state", "list", l.Name, "err", err)
		return
	}
	late := MaxLateness(l)
	d, slot := schedule.Decide(spec, st.LastSlot, l.Created, now, late)
	log := s.log().With("list", l.Name, "slot", slot.UTC().Format(time.RFC3339))
	mark := func(edition, result string) {
		if err := s.Store.PutListSchedule(l.Name, schedule.ListState{LastSlot: slot, LastEdition: edition, LastResult: result, Updated: now}); err != nil {
			log.Error("scheduler: saving schedule state", "err", err)
		}
	}
	switch d {
	case schedule.Wait:
		return
	case schedule.TooLate:
		msg := fmt.Sprintf("skipped: missed by %s, more than the list's maximum lateness of %s", now.Sub(slot).Round(time.Second), late)
		log.Warn("scheduler: edition not sent, too late", "missed_by", now.Sub(slot).Round(time.Second), "max_lateness", late)
		mark("", msg)
		return
	}
	ed, created, err := s.Engine.StartWith(l.Name, delivery.StartOptions{Slot: slot})
	switch {
	case errors.Is(err, delivery.ErrNothingNew):
		log.Info("scheduler: edition skipped: nothing new", "reason", err)
		mark("", "skipped: "+err.Error())
		return
	case err != nil:
		// Left unhandled: the next tick tries again, while within the
		// lateness.
		log.Error("scheduler: building the edition failed; retrying next tick", "err", err)
		return
	case !created && ed.Status == digest.EditionSent:
		log.Info("scheduler: edition already sent (by an editor?)", "edition", ed.ID)
		mark(ed.ID, "already sent")
		return
	}
	late2 := ""
	if now.Sub(slot) > time.Minute {
		late2 = fmt.Sprintf(" (caught up %s late)", now.Sub(slot).Round(time.Second))
	}
	mark(ed.ID, "sending"+late2)
	log.Info("scheduler: sending edition"+late2, "edition", ed.ID, "stories", ed.Stories.Len())
	res, err := s.Engine.Deliver(ctx, ed.ID)
	if err != nil {
		log.Error("scheduler: delivery stopped", "edition", ed.ID, "result", res.String(), "err", err)
		mark(ed.ID, "stopped: "+err.Error())
		return
	}
	log.Info("scheduler: edition sent", "edition", ed.ID, "sent", res.Sent, "failed", res.Failed,
		"suppressed", res.Suppressed, "skipped", res.Skipped, "elapsed", res.Elapsed.Round(time.Millisecond))
	mark(ed.ID, "sent"+late2+": "+res.String())
}

// resume continues the list's unfinished editions once after a start:
// those sending (a crash) or stopped by a signal, if they are within the
// list's maximum lateness; older ones are left for 'editions resume'.
func (s *Scheduler) resume(ctx context.Context, l subscribers.List, now time.Time) {
	eds, err := s.Store.Editions(l.Name)
	if err != nil {
		s.log().Error("scheduler: reading editions", "list", l.Name, "err", err)
		return
	}
	for _, ed := range eds {
		if ed.Status == digest.EditionSent || (ed.Status == digest.EditionPaused && ed.Reason != "stopped by signal") {
			continue
		}
		if age := now.Sub(ed.Created); age > MaxLateness(l) {
			s.log().Warn("scheduler: unfinished edition left alone: older than the list's maximum lateness; 'newsdigest editions resume' continues it",
				"list", l.Name, "edition", ed.ID, "status", ed.Status, "age", age.Round(time.Second))
			continue
		}
		s.log().Info("scheduler: resuming unfinished edition", "list", l.Name, "edition", ed.ID, "status", ed.Status)
		res, err := s.Engine.Deliver(ctx, ed.ID)
		if err != nil {
			s.log().Error("scheduler: resume stopped", "edition", ed.ID, "err", err)
			continue
		}
		s.log().Info("scheduler: edition resumed and sent", "edition", ed.ID, "sent", res.Sent, "failed", res.Failed, "skipped", res.Skipped)
	}
}

// Trigger is an editor's "send now" through the daemon: it records the
// edition of the list's manual slot and queues its recipients at once
// (refused with an error wrapping delivery.ErrEditionExists when that
// edition exists, unless forceNew), then delivers it in the background.
func (s *Scheduler) Trigger(list string, forceNew bool) (digest.Edition, error) {
	s.mu.Lock()
	ctx := s.ctx
	s.mu.Unlock()
	if ctx == nil {
		return digest.Edition{}, errors.New("scheduler: not running")
	}
	ed, err := s.Engine.Trigger(list, forceNew)
	if err != nil {
		return ed, err
	}
	log := s.log().With("list", list, "edition", ed.ID)
	log.Info("scheduler: edition triggered by an editor", "stories", ed.Stories.Len(), "force_new", forceNew)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		res, err := s.Engine.Deliver(ctx, ed.ID)
		if err != nil {
			log.Error("scheduler: triggered delivery stopped", "err", err)
			return
		}
		log.Info("scheduler: triggered edition sent", "sent", res.Sent, "failed", res.Failed, "skipped", res.Skipped)
	}()
	return ed, nil
}

func (s *Scheduler) prune(now time.Time) {
	p, ok := s.Store.(Pruner)
	if !ok {
		return
	}
	s.mu.Lock()
	if !s.pruned.IsZero() && now.Sub(s.pruned) < 6*time.Hour {
		s.mu.Unlock()
		return
	}
	s.pruned = now
	s.mu.Unlock()
	keep := s.History
	if keep <= 0 {
		keep = delivery.DefaultHistory
	}
	n, err := p.PruneHistory(now.Add(-keep))
	if err != nil {
		s.log().Error("scheduler: pruning story history", "err", err)
	} else if n > 0 {
		s.log().Info("scheduler: story history pruned", "entries", n, "older_than", now.Add(-keep).UTC().Format(time.RFC3339))
	}
}
