package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/adminapi"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/delivery"
	"newsdigest/digest/mailer"
)

// engineEditor is adminapi.Editor on a delivery engine: the CLI's own on
// the database file, or the daemon's behind its admin API. Either way
// preview and check --list get the same edition, rendered the same way.
type engineEditor struct{ e *delivery.Engine }

func (x engineEditor) Preview(list, as string) (delivery.Preview, error) {
	return x.e.Preview(list, as)
}

func (x engineEditor) Sample(list string) (adminapi.Sample, error) {
	raw, ed, skipped, err := composeSample(x.e, list)
	if err != nil {
		return adminapi.Sample{}, err
	}
	return adminapi.Sample{Edition: ed, Skipped: skipped, EML: raw}, nil
}

// editor returns the Editor of the open database (the CLI's engine) or
// of the daemon that holds it; openAdmin must have run.
func (m *Main) editor() (adminapi.Editor, error) {
	if m.store == nil {
		if cl, ok := m.admin.(*adminapi.Client); ok {
			return cl, nil
		}
		return nil, errors.New("no database and no daemon")
	}
	e, err := m.engine("")
	if err != nil {
		return nil, err
	}
	return engineEditor{e}, nil
}

// engineTester is adminapi.Tester on the daemon's engine: test copies go
// out over its SMTP server, dry runs hand each message to the admin API,
// which streams it to the CLI (that writes the .eml files).
type engineTester struct{ e *delivery.Engine }

func (x engineTester) SendTest(ctx context.Context, list, to string) (digest.Edition, error) {
	return x.e.SendTest(ctx, list, to)
}

// DryRun composes every message of the list's edition and hands each to
// write (the admin API's stream). The first message write refuses (the
// client went away or stopped reading) cancels the run's context: the
// engine stops before its next message, and no further message is
// written.
func (x engineTester) DryRun(ctx context.Context, list string, write func(to string, eml []byte) error) (delivery.Result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e := *x.e // a copy whose transport is write
	e.Dial = func(context.Context) (delivery.Transport, error) {
		return writeTransport(func(to string, eml []byte) error {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err := write(to, eml); err != nil {
				err = fmt.Errorf("dry run of %s: %w", list, err)
				cancel(err)
				return err
			}
			return nil
		}), nil
	}
	res, err := e.DryRun(ctx, list)
	if cause := context.Cause(ctx); err != nil && cause != nil && errors.Is(err, context.Canceled) {
		err = cause // why it stopped: the stream's error
	}
	return res, err
}

// writeTransport hands each message to a function.
type writeTransport func(to string, eml []byte) error

func (t writeTransport) Send(_ context.Context, env mailer.Envelope, parts ...[]byte) error {
	if len(env.To) == 0 {
		return fmt.Errorf("dry run: message without recipient")
	}
	return t(env.To[0], bytes.Join(parts, nil))
}

func (t writeTransport) Close() error { return nil }

// daemonSends is the daemon's sender: the scheduler's and the admin API's
// deliveries all go through it, so that it knows which editions are being
// sent. It lets one delivery of an edition run at a time (two would send
// the same queued recipients twice), keeps each run's progress and
// result for 'editions resume' to follow, and runs the sends that the
// admin API resumes in the background until the daemon stops.
//
// The scheduler may queue more recipients into an edition that is being
// sent (a local-time edition gathers the readers due during its hour)
// and deliver it again: when a run of it is going on, that delivery
// joins the run, which delivers once more when it ends, since its feeder
// may be past the new addresses already.
type daemonSends struct {
	engine *delivery.Engine
	store  *boltstore.Store
	log    *slog.Logger

	mu       sync.Mutex
	ctx      context.Context // the daemon's, once its component runs
	stopping bool
	runs     map[string]*sendRun // by edition: the latest run
	wg       sync.WaitGroup
}

// sendRun is one run of an edition's send in the daemon: one Deliver, or
// several when deliveries joined it.
type sendRun struct {
	mu    sync.Mutex
	start time.Time
	st    adminapi.DeliveryRun
	base  int // outcomes of the run's earlier Deliver calls

	again bool // a delivery joined the run (guarded by daemonSends.mu)
	// reserved: recorded by Trigger for the delivery the scheduler starts
	// next, which takes the run over (guarded by daemonSends.mu).
	reserved bool
}

func (r *sendRun) state() adminapi.DeliveryRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	if st.Running {
		st.Elapsed = time.Since(r.start)
	}
	return st
}

func (r *sendRun) progress(done, total int) {
	r.mu.Lock()
	r.st.Done, r.st.Total = r.base+done, r.base+total
	r.mu.Unlock()
}

// keepRuns is how long a finished run stays to be read.
const keepRuns = time.Hour

// begin records a new run of the edition. When one is running it refuses
// with an error wrapping adminapi.ErrBusy, or, if join, marks the running
// one to deliver again when it ends and returns it with joined set.
// d.mu must be held.
func (d *daemonSends) begin(id string, total int, join bool) (r *sendRun, joined bool, err error) {
	if d.runs == nil {
		d.runs = make(map[string]*sendRun)
	}
	if r := d.runs[id]; r != nil && r.state().Running {
		if r.reserved { // recorded by Trigger: this delivery is its run
			r.reserved = false
			r.mu.Lock()
			r.start = time.Now()
			r.mu.Unlock()
			return r, false, nil
		}
		if join {
			r.again = true
			return r, true, nil
		}
		return nil, false, fmt.Errorf("edition %s: %w in the daemon", id, adminapi.ErrBusy)
	}
	for k, r := range d.runs {
		if st := r.state(); !st.Running && time.Since(r.start.Add(st.Elapsed)) > keepRuns {
			delete(d.runs, k)
		}
	}
	r = &sendRun{start: time.Now(), st: adminapi.DeliveryRun{Edition: id, Running: true, Total: total}}
	d.runs[id] = r
	return r, false, nil
}

// deliver runs the delivery of a begun run and records its result. When
// deliveries joined the run while it went, it delivers again (only the
// recipients still queued), unless it stopped on an error or the edition
// was paused meanwhile.
func (d *daemonSends) deliver(ctx context.Context, id string, r *sendRun) (delivery.Result, error) {
	e := *d.engine // a copy with this run's progress
	e.Progress = r.progress
	sum := delivery.Result{Edition: id}
	for {
		res, err := e.Deliver(ctx, id)
		sum.Sent += res.Sent
		sum.Failed += res.Failed
		sum.Suppressed += res.Suppressed
		sum.Skipped += res.Skipped
		sum.Commits += res.Commits
		sum.Elapsed = time.Since(r.start)
		d.mu.Lock()
		again := r.again && err == nil && ctx.Err() == nil
		r.again = false
		if again {
			if st, _, serr := d.store.EditionStatus(id); serr != nil || st == digest.EditionPaused {
				again = false // paused after its last page: it stays paused
			}
		}
		if !again {
			r.mu.Lock()
			r.st.Running = false
			r.st.Sent, r.st.Failed, r.st.Suppressed, r.st.Skipped = sum.Sent, sum.Failed, sum.Suppressed, sum.Skipped
			r.st.Elapsed = sum.Elapsed
			if err != nil {
				r.st.Error, r.st.Paused = err.Error(), errors.Is(err, delivery.ErrPaused)
			}
			r.mu.Unlock()
			d.mu.Unlock()
			return sum, err
		}
		d.mu.Unlock()
		r.mu.Lock()
		r.base = r.st.Done
		r.mu.Unlock()
		d.log.Info("delivering the edition again: recipients were queued during its run", "edition", id, "sent", sum.Sent)
	}
}

// StartWith, Trigger and Deliver make it the scheduler's Sender.
func (d *daemonSends) StartWith(list string, o delivery.StartOptions) (digest.Edition, bool, error) {
	return d.engine.StartWith(list, o)
}

// Trigger records the edition (delivery.Engine.Trigger) and its run at
// once, before the scheduler delivers it in the background: 'send'
// through the admin API follows that run (GET
// /api/editions/{id}/delivery) from the moment the API answers. The
// scheduler's Deliver takes the reserved run over.
func (d *daemonSends) Trigger(list string, forceNew bool) (digest.Edition, error) {
	ed, err := d.engine.Trigger(list, forceNew)
	if err != nil {
		return ed, err
	}
	pending, err := d.store.CountPending(ed.ID)
	if err != nil {
		d.log.Warn("counting the triggered edition's queued deliveries", "edition", ed.ID, "err", err)
	}
	d.mu.Lock()
	if r, _, err := d.begin(ed.ID, pending, false); err == nil {
		r.reserved = true
	}
	d.mu.Unlock()
	return ed, nil
}

// Deliver delivers the edition's queued recipients. When a delivery of it
// runs already (the scheduler's or a resume through the admin API), it
// joins that run and returns at once with an empty result: the run
// delivers again when it ends, so that recipients queued since its
// feeder went past them are sent too.
func (d *daemonSends) Deliver(ctx context.Context, id string) (delivery.Result, error) {
	d.mu.Lock()
	r, joined, err := d.begin(id, 0, true)
	d.mu.Unlock()
	if err != nil {
		return delivery.Result{Edition: id}, err
	}
	if joined {
		d.log.Info("edition is being sent already: its run will deliver the newly queued recipients too", "edition", id)
		return delivery.Result{Edition: id}, nil
	}
	return d.deliver(ctx, id, r)
}

// Resume is adminapi.Runner's: it continues the edition's send in the
// background, as 'editions resume' does in the CLI when no daemon runs.
// A paused edition goes back to sending when the delivery starts
// (delivery.Engine.Deliver switches it), so that an edition is never
// marked sending with nothing sending it.
func (d *daemonSends) Resume(id string) (adminapi.DeliveryRun, error) {
	ed, err := d.store.GetEdition(id)
	if err != nil {
		return adminapi.DeliveryRun{}, err
	}
	if ed.Status == digest.EditionSent {
		return adminapi.DeliveryRun{}, fmt.Errorf("edition %s is already sent: nothing to resume (%w)", id, boltstore.ErrExists)
	}
	pending, err := d.store.CountPending(id)
	if err != nil {
		return adminapi.DeliveryRun{}, err
	}
	d.mu.Lock()
	ctx := d.ctx
	if ctx == nil || d.stopping {
		d.mu.Unlock()
		return adminapi.DeliveryRun{}, errors.New("the daemon is not ready to send (starting or stopping)")
	}
	r, _, err := d.begin(id, pending, false)
	if err != nil {
		d.mu.Unlock()
		return adminapi.DeliveryRun{}, err
	}
	d.wg.Add(1)
	d.mu.Unlock()
	log := d.log.With("edition", id)
	go func() {
		defer d.wg.Done()
		log.Info("resuming edition (admin API)", "queued", pending)
		res, err := d.deliver(ctx, id, r)
		if err != nil {
			log.Error("resumed delivery stopped", "result", res.String(), "err", err)
			return
		}
		log.Info("resumed edition sent", "sent", res.Sent, "failed", res.Failed, "suppressed", res.Suppressed, "skipped", res.Skipped)
	}()
	return r.state(), nil
}

// Run is adminapi.Runner's: the edition's latest run in this daemon.
func (d *daemonSends) Run(id string) (adminapi.DeliveryRun, error) {
	d.mu.Lock()
	r := d.runs[id]
	d.mu.Unlock()
	if r == nil {
		if _, err := d.store.GetEdition(id); err != nil {
			return adminapi.DeliveryRun{}, err
		}
		return adminapi.DeliveryRun{}, fmt.Errorf("edition %s: no send of it ran in this daemon since it started (%w)", id, boltstore.ErrNotFound)
	}
	return r.state(), nil
}

// component serves resumes until ctx ends, then waits for the resumed
// deliveries (which stop gracefully with ctx).
func (d *daemonSends) component() component {
	return component{name: "sends", run: func(ctx context.Context) error {
		d.mu.Lock()
		d.ctx = ctx
		d.mu.Unlock()
		<-ctx.Done()
		d.mu.Lock()
		d.stopping = true
		d.mu.Unlock()
		d.wg.Wait()
		return nil
	}}
}

var (
	_ adminapi.Editor = engineEditor{}
	_ adminapi.Tester = engineTester{}
	_ adminapi.Runner = (*daemonSends)(nil)
)
