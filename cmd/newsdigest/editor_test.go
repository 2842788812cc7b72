package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/adminapi"
	"newsdigest/digest/capture"
)

// pausedSend prepares a database with one list, readers subscribers and
// an edition paused before its first message (no SMTP server yet at
// smtpAddr), and returns the CLI and the edition's ID.
func pausedSend(t *testing.T, smtpAddr string, readers int) (*cli, string) {
	t.Helper()
	c := newCLI(t, smtpAddr)
	c.environ = append(c.environ, "NEWSDIGEST_SMTP_MAX_RETRIES=1")
	return c, pauseFirstSend(t, c, readers)
}

// pauseFirstSend adds a list, readers subscribers and a feed to c's
// database and sends while c's SMTP server is down, which pauses the
// edition before its first message; it returns the edition's ID.
func pauseFirstSend(t *testing.T, c *cli, readers int) string {
	t.Helper()
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	var csv strings.Builder
	csv.WriteString("email\n")
	for i := range readers {
		fmt.Fprintf(&csv, "reader%03d@example.org\n", i)
	}
	c.ok("subscribers", "import", c.file("readers.csv", csv.String()))
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))
	if code, _, errs := c.run("send", "--yes"); code != 1 || !strings.Contains(errs, "editions resume") {
		t.Fatalf("send without an SMTP server: exit %d: %s", code, errs)
	}
	return pausedEdition(t, c)
}

// openSends opens c's database as the daemon does and returns its sender.
func openSends(t *testing.T, c *cli) (*Main, *daemonSends) {
	t.Helper()
	var logs syncBuffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &logs, Stderr: &logs, Environ: c.environ}
	if err := m.open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	e, err := m.engine("")
	if err != nil {
		t.Fatal(err)
	}
	return m, &daemonSends{engine: e, store: m.store, log: m.log}
}

// TestDaemonSendsDeliverJoinsARunningSend: the scheduler queues readers
// into a local-time edition that is being sent (its feeder is past their
// addresses) and delivers it again: that delivery joins the run, and the
// run sends them before it ends.
func TestDaemonSendsDeliverJoinsARunningSend(t *testing.T) {
	const readers = 300 // more than a page of the sender's queue
	smtpAddr := freeAddr(t)
	c, id := pausedSend(t, smtpAddr, readers)
	late := []string{"aaron@example.org", "abby@example.org", "adam@example.org"} // before the first page's last address
	for _, a := range late {
		c.ok("subscribers", "add", a)
	}

	srv, err := capture.Start(smtpAddr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	var once, closeOnce sync.Once
	srv.SetReply(func(from, to string) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	})
	defer closeOnce.Do(func() { close(release) })

	m, d := openSends(t, c)
	ctx := context.Background()
	type outcome struct {
		sent int
		err  error
	}
	first := make(chan outcome, 1)
	go func() {
		res, err := d.Deliver(ctx, id)
		first <- outcome{res.Sent, err}
	}()
	select {
	case <-entered:
	case o := <-first:
		t.Fatalf("the first delivery ended before sending: %+v", o)
	case <-time.After(10 * time.Second):
		t.Fatal("the first delivery did not reach the SMTP server")
	}
	if n, err := m.store.QueueDeliveries(id, late); err != nil || n != len(late) {
		t.Fatalf("queueing the late readers: %d, %v", n, err)
	}
	// The scheduler's second delivery joins the run and returns at once.
	if res, err := d.Deliver(ctx, id); err != nil || res.Sent != 0 {
		t.Fatalf("delivery while one runs: %+v, %v", res, err)
	}
	// An operator's resume is still refused while it runs.
	d.mu.Lock()
	d.ctx = ctx
	d.mu.Unlock()
	if _, err := d.Resume(id); !errors.Is(err, adminapi.ErrBusy) {
		t.Errorf("resume while a delivery runs: %v, want busy", err)
	}
	closeOnce.Do(func() { close(release) })
	var o outcome
	select {
	case o = <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("the delivery did not end")
	}
	if o.err != nil || o.sent != readers+len(late) {
		t.Errorf("the run: %d sent, %v; want %d", o.sent, o.err, readers+len(late))
	}
	got := map[string]int{}
	for _, msg := range srv.Messages() {
		for _, to := range msg.To {
			got[to]++
		}
	}
	for _, a := range late {
		if got[a] != 1 {
			t.Errorf("%s got %d copies, want 1", a, got[a])
		}
	}
	if len(got) != readers+len(late) || srv.Count() != readers+len(late) {
		t.Errorf("%d messages to %d readers, want %d each once", srv.Count(), len(got), readers+len(late))
	}
	if n, err := m.store.CountPending(id); err != nil || n != 0 {
		t.Errorf("still queued: %d, %v", n, err)
	}
	if st, _, err := m.store.EditionStatus(id); err != nil || st != digest.EditionSent {
		t.Errorf("edition status %s, %v; want sent", st, err)
	}
	if run, err := d.Run(id); err != nil || run.Running || run.Sent != readers+len(late) || run.Done != readers+len(late) {
		t.Errorf("the run as the admin API shows it: %+v, %v", run, err)
	}
}

// TestDaemonSendsResumeWhileStopping: a resume that arrives while the
// daemon stops is refused and leaves the edition paused.
func TestDaemonSendsResumeWhileStopping(t *testing.T) {
	c, id := pausedSend(t, freeAddr(t), 3)
	m, d := openSends(t, c)
	d.ctx, d.stopping = context.Background(), true
	if _, err := d.Resume(id); err == nil || !strings.Contains(err.Error(), "stopping") {
		t.Fatalf("resume while stopping: %v", err)
	}
	if st, _, err := m.store.EditionStatus(id); err != nil || st != digest.EditionPaused {
		t.Errorf("edition status %s, %v; want paused", st, err)
	}
	if _, err := d.Run(id); err == nil {
		t.Error("a refused resume left a run")
	}
}

// TestEngineTesterDryRunStopsOnAWriteError: the daemon's dry run writes
// nothing more after its stream refused a message, and says why it
// stopped.
func TestEngineTesterDryRunStopsOnAWriteError(t *testing.T) {
	c := newCLI(t, "")
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	c.ok("subscribers", "import", c.file("readers.csv", "email\na@example.org\nb@example.org\nc@example.org\nd@example.org\n"))
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))
	_, d := openSends(t, c)
	gone := errors.New("client gone")
	calls := 0
	res, err := engineTester{d.engine}.DryRun(context.Background(), "daily", func(string, []byte) error {
		calls++
		return gone
	})
	if calls != 1 || !errors.Is(err, gone) || res.Sent != 0 {
		t.Errorf("dry run into a refusing stream: %d writes, %+v, %v; want 1 write and its error", calls, res, err)
	}
	// The same stream taking every message gets them all.
	calls = 0
	if res, err := (engineTester{d.engine}).DryRun(context.Background(), "daily", func(string, []byte) error { calls++; return nil }); err != nil || calls != 4 || res.Sent != 4 {
		t.Errorf("dry run: %d writes, %+v, %v; want 4", calls, res, err)
	}
}

// TestDaemonSendsTriggerRecordsTheRun: the daemon's Trigger records the
// edition's run before the scheduler delivers it, so that 'send' through
// the admin API can follow it at once; the scheduler's delivery takes
// that run over (it does not join it and return empty) and finishes it.
func TestDaemonSendsTriggerRecordsTheRun(t *testing.T) {
	srv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newCLI(t, srv.Addr())
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	c.ok("subscribers", "add", "ann@example.org")
	c.ok("subscribers", "add", "bob@example.org")
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))
	_, d := openSends(t, c)

	ed, err := d.Trigger("daily", false)
	if err != nil {
		t.Fatal(err)
	}
	run, err := d.Run(ed.ID)
	if err != nil || !run.Running || run.Total != 2 || run.Done != 0 {
		t.Fatalf("run right after Trigger: %+v, %v; want running, 2 queued", run, err)
	}
	res, err := d.Deliver(context.Background(), ed.ID)
	if err != nil || res.Sent != 2 {
		t.Fatalf("the scheduler's delivery: %+v, %v; want 2 sent (the run taken over, not joined)", res, err)
	}
	run, err = d.Run(ed.ID)
	if err != nil || run.Running || run.Sent != 2 || run.Done != 2 {
		t.Errorf("run after the delivery: %+v, %v; want finished, 2 sent", run, err)
	}
	if srv.Count() != 2 {
		t.Errorf("%d messages, want 2", srv.Count())
	}
}
