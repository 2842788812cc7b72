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

func (x engineTester) DryRun(ctx context.Context, list string, write func(to string, eml []byte) error) (delivery.Result, error) {
	e := *x.e // a copy whose transport is write
	e.Dial = func(context.Context) (delivery.Transport, error) { return writeTransport(write), nil }
	return e.DryRun(ctx, list)
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

// sendRun is one Deliver of an edition in the daemon.
type sendRun struct {
	mu    sync.Mutex
	start time.Time
	st    adminapi.DeliveryRun
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
	r.st.Done, r.st.Total = done, total
	r.mu.Unlock()
}

// keepRuns is how long a finished run stays to be read.
const keepRuns = time.Hour

// begin records a new run of the edition, or refuses when one is running.
func (d *daemonSends) begin(id string, total int) (*sendRun, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.runs == nil {
		d.runs = make(map[string]*sendRun)
	}
	if r := d.runs[id]; r != nil && r.state().Running {
		return nil, fmt.Errorf("edition %s: %w in the daemon", id, adminapi.ErrBusy)
	}
	for k, r := range d.runs {
		if st := r.state(); !st.Running && time.Since(r.start.Add(st.Elapsed)) > keepRuns {
			delete(d.runs, k)
		}
	}
	r := &sendRun{start: time.Now(), st: adminapi.DeliveryRun{Edition: id, Running: true, Total: total}}
	d.runs[id] = r
	return r, nil
}

// deliver runs the delivery of a begun run and records its result.
func (d *daemonSends) deliver(ctx context.Context, id string, r *sendRun) (delivery.Result, error) {
	e := *d.engine // a copy with this run's progress
	e.Progress = r.progress
	res, err := e.Deliver(ctx, id)
	r.mu.Lock()
	r.st.Running = false
	r.st.Sent, r.st.Failed, r.st.Suppressed, r.st.Skipped = res.Sent, res.Failed, res.Suppressed, res.Skipped
	r.st.Elapsed = time.Since(r.start)
	if err != nil {
		r.st.Error, r.st.Paused = err.Error(), errors.Is(err, delivery.ErrPaused)
	}
	r.mu.Unlock()
	return res, err
}

// StartWith, Trigger and Deliver make it the scheduler's Sender.
func (d *daemonSends) StartWith(list string, o delivery.StartOptions) (digest.Edition, bool, error) {
	return d.engine.StartWith(list, o)
}

func (d *daemonSends) Trigger(list string, forceNew bool) (digest.Edition, error) {
	return d.engine.Trigger(list, forceNew)
}

// Deliver delivers the edition, unless a delivery of it runs already
// (then it returns at once with an error wrapping adminapi.ErrBusy).
func (d *daemonSends) Deliver(ctx context.Context, id string) (delivery.Result, error) {
	r, err := d.begin(id, 0)
	if err != nil {
		return delivery.Result{Edition: id}, err
	}
	return d.deliver(ctx, id, r)
}

// Resume is adminapi.Runner's: it continues the edition's send in the
// background, as 'editions resume' does in the CLI when no daemon runs.
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
	ctx, stopping := d.ctx, d.stopping
	d.mu.Unlock()
	if ctx == nil || stopping {
		return adminapi.DeliveryRun{}, errors.New("the daemon is not ready to send (starting or stopping)")
	}
	r, err := d.begin(id, pending)
	if err != nil {
		return adminapi.DeliveryRun{}, err
	}
	if _, err := d.store.UpdateEdition(id, func(e *digest.Edition) error {
		if e.Status == digest.EditionPaused {
			e.Status, e.Reason = digest.EditionSending, ""
		}
		return nil
	}); err != nil {
		r.mu.Lock()
		r.st.Running, r.st.Error = false, err.Error()
		r.mu.Unlock()
		return adminapi.DeliveryRun{}, err
	}
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		r.mu.Lock()
		r.st.Running, r.st.Error = false, "the daemon is stopping"
		r.mu.Unlock()
		return adminapi.DeliveryRun{}, errors.New("the daemon is stopping")
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
