package scheduler_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/capture"
	"newsdigest/digest/delivery"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/digest/schedule"
	"newsdigest/digest/scheduler"
	"newsdigest/subscribers"
)

var (
	_ scheduler.Store  = (*boltstore.Store)(nil)
	_ scheduler.Sender = (*delivery.Engine)(nil)
	_ scheduler.Pruner = (*boltstore.Store)(nil)
)

// clock is a fake clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// syncBuffer is a log sink safe for the scheduler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	st     *boltstore.Store
	srv    *capture.Server
	engine *delivery.Engine
	clock  *clock
	logs   *syncBuffer
}

// newEnv makes a real store, an in-process SMTP server and the real
// engine, all on a fake clock starting at start.
func newEnv(t *testing.T, start time.Time) *env {
	t.Helper()
	// No fsync per commit: these tests commit thousands of times and
	// test no crash (the delivery package's crash test does).
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "nd.db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: start}
	st.Clock = c
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	srv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, err := render.New("")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := subscribers.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, srv: srv, clock: c, logs: &syncBuffer{}}
	e.engine = &delivery.Engine{
		Store: st, Renderer: r, Signer: signer, Clock: c, Workers: 2, RetryBase: time.Millisecond,
		BaseURL: "https://gazette.example/newsletter",
		Dial:    delivery.SMTPDialer(mailer.Config{Host: srv.Host(), Port: srv.Port(), TLS: "none", Timeout: 5 * time.Second}),
	}
	return e
}

func (e *env) scheduler() *scheduler.Scheduler {
	return &scheduler.Scheduler{
		Store: e.st, Engine: e.engine, Clock: e.clock,
		Log: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (e *env) list(t *testing.T, name, spec string, created time.Time) {
	t.Helper()
	if err := e.st.PutList(subscribers.List{Name: name, Title: "The " + name, From: "Gazette <digest@gazette.example>", Schedule: spec, Created: created}); err != nil {
		t.Fatal(err)
	}
}

// stories adds n stories published in the hours before at.
func (e *env) stories(t *testing.T, at time.Time, n int, tag string) {
	t.Helper()
	var arts []digest.Article
	for i := range n {
		link := fmt.Sprintf("https://gazette.example/%s/%d", tag, i)
		arts = append(arts, digest.Article{
			ID: digest.ArticleID("", link), Link: link, Title: fmt.Sprintf("Story %s %d", tag, i), SummaryText: "Text.",
			Published: at.Add(-time.Duration(i+1) * time.Hour), Views: int64(100 + i),
		})
	}
	if _, _, err := e.st.UpsertArticles(arts); err != nil {
		t.Fatal(err)
	}
}

func (e *env) readers(t *testing.T, list string, n int) []string {
	t.Helper()
	var rows []subscribers.Row
	var emails []string
	for i := range n {
		sub := subscribers.Subscriber{Email: fmt.Sprintf("r%04d@example.org", i), SendHour: -1, Frequency: subscribers.Daily}
		sub.SetStatus(list, subscribers.Confirmed, e.clock.Now())
		rows = append(rows, subscribers.Row{Subscriber: sub})
		emails = append(emails, sub.Email)
	}
	if _, _, _, err := e.st.UpsertSubscribers(rows, false); err != nil {
		t.Fatal(err)
	}
	return emails
}

func (e *env) received() map[string]int {
	got := map[string]int{}
	for _, m := range e.srv.Messages() {
		for _, to := range m.To {
			got[to]++
		}
	}
	return got
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestCronListSendsEachSlotOnceAcrossARestart walks a fake clock over a
// morning: the 07:00 Paris edition goes out once at 06:00 UTC, and a
// restarted scheduler (a new one on the same store) sends nothing again.
func TestCronListSendsEachSlotOnceAcrossARestart(t *testing.T) {
	start := at("2026-11-27T04:00:00Z")
	e := newEnv(t, start)
	e.list(t, "daily", "CRON_TZ=Europe/Paris 0 7 * * *", at("2026-11-20T00:00:00Z"))
	e.stories(t, start, 5, "a")
	emails := e.readers(t, "daily", 20)
	ctx := context.Background()
	s := e.scheduler()
	var sentAt time.Time
	for now := start; now.Before(start.Add(5 * time.Hour)); now = now.Add(5 * time.Minute) {
		if now.Equal(start.Add(150 * time.Minute)) {
			s = e.scheduler() // a restart
		}
		e.clock.set(now)
		s.Tick(ctx)
		s.Wait()
		if sentAt.IsZero() && len(e.srv.Messages()) > 0 {
			sentAt = now
		}
	}
	if !sentAt.Equal(at("2026-11-27T06:00:00Z")) {
		t.Errorf("sent at %s, want 06:00 UTC (07:00 Paris)", sentAt)
	}
	got := e.received()
	for _, m := range emails {
		if got[m] != 1 {
			t.Errorf("%s got %d copies, want 1", m, got[m])
		}
	}
	st, err := e.st.GetListSchedule("daily")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastEdition != "daily-20261127-0600" || !strings.HasPrefix(st.LastResult, "sent") {
		t.Errorf("schedule state %+v", st)
	}
	if !strings.Contains(e.logs.String(), "scheduler: edition sent") {
		t.Errorf("no run logged:\n%s", e.logs)
	}
}

func TestCatchUpAfterDowntime(t *testing.T) {
	for _, tc := range []struct {
		name     string
		restart  string // when the daemon comes back
		lateness time.Duration
		wantSent bool
		wantLog  string
	}{
		{"InsideMaxLateness", "2026-11-27T08:30:00Z", 0, true, "caught up 2h30m0s late"},
		{"OutsideMaxLateness", "2026-11-27T09:30:00Z", 0, false, "too late"},
		{"ListLateness", "2026-11-27T06:45:00Z", 30 * time.Minute, false, "too late"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, at(tc.restart))
			e.list(t, "daily", "CRON_TZ=Europe/Paris 0 7 * * *", at("2026-11-20T00:00:00Z"))
			if tc.lateness > 0 {
				l, _ := e.st.GetList("daily")
				l.MaxLateness = tc.lateness
				if err := e.st.PutList(l); err != nil {
					t.Fatal(err)
				}
			}
			// Yesterday's slot was handled before the downtime.
			if err := e.st.PutListSchedule("daily", scheduleState("2026-11-26T06:00:00Z")); err != nil {
				t.Fatal(err)
			}
			e.stories(t, at(tc.restart), 4, "b")
			e.readers(t, "daily", 3)
			s := e.scheduler()
			s.Tick(context.Background())
			s.Wait()
			if n := len(e.srv.Messages()); (n == 3) != tc.wantSent || (n != 0 && n != 3) {
				t.Errorf("%d messages, want sent=%v", n, tc.wantSent)
			}
			st, _ := e.st.GetListSchedule("daily")
			if !st.LastSlot.Equal(at("2026-11-27T06:00:00Z")) {
				t.Errorf("last slot %s, want today's: handled either way", st.LastSlot)
			}
			if !strings.Contains(e.logs.String()+st.LastResult, tc.wantLog) {
				t.Errorf("want %q in the log or state %q:\n%s", tc.wantLog, st.LastResult, e.logs)
			}
			// A second tick does nothing more.
			s.Tick(context.Background())
			s.Wait()
			if n := len(e.srv.Messages()); n > 3 {
				t.Errorf("%d messages after a second tick", n)
			}
		})
	}
}

// panicky and blocking senders wrap the real engine.
type wrapSender struct {
	*delivery.Engine
	starts  atomic.Int32
	panicAt int32         // StartWith panics on this call (1-based); 0 never
	block   chan struct{} // Deliver waits on it when set
}

func (w *wrapSender) StartWith(list string, o delivery.StartOptions) (digest.Edition, bool, error) {
	if n := w.starts.Add(1); n == w.panicAt {
		panic("boom in the list's job")
	}
	return w.Engine.StartWith(list, o)
}

func (w *wrapSender) Deliver(ctx context.Context, id string) (delivery.Result, error) {
	if w.block != nil {
		<-w.block
	}
	return w.Engine.Deliver(ctx, id)
}

func TestJobPanicIsRecoveredAndRetried(t *testing.T) {
	e := newEnv(t, at("2026-11-27T06:00:00Z"))
	e.list(t, "daily", "CRON_TZ=Europe/Paris 0 7 * * *", at("2026-11-20T00:00:00Z"))
	e.stories(t, e.clock.Now(), 3, "c")
	e.readers(t, "daily", 2)
	w := &wrapSender{Engine: e.engine, panicAt: 1}
	s := e.scheduler()
	s.Engine = w
	s.Tick(context.Background())
	s.Wait()
	if !strings.Contains(e.logs.String(), "boom in the list's job") {
		t.Fatalf("the panic was not logged:\n%s", e.logs)
	}
	if n := len(e.srv.Messages()); n != 0 {
		t.Errorf("%d messages after the panic", n)
	}
	// The scheduler lives on; the next tick sends the slot.
	e.clock.set(e.clock.Now().Add(time.Minute))
	s.Tick(context.Background())
	s.Wait()
	if n := len(e.srv.Messages()); n != 2 {
		t.Errorf("%d messages after the retry, want 2\n%s", n, e.logs)
	}
}

func TestTickSkipsAListStillRunning(t *testing.T) {
	e := newEnv(t, at("2026-11-27T06:00:00Z"))
	e.list(t, "daily", "CRON_TZ=Europe/Paris 0 7 * * *", at("2026-11-20T00:00:00Z"))
	e.stories(t, e.clock.Now(), 3, "d")
	e.readers(t, "daily", 2)
	w := &wrapSender{Engine: e.engine, block: make(chan struct{})}
	s := e.scheduler()
	s.Engine = w
	s.Tick(context.Background()) // starts, blocks in Deliver
	// Wait until the job is inside Deliver (it marked the slot).
	for i := 0; ; i++ {
		st, _ := e.st.GetListSchedule("daily")
		if st.LastEdition != "" {
			break
		}
		if i > 5000 {
			t.Fatal("the job never reached Deliver")
		}
		time.Sleep(time.Millisecond) // waiting for a goroutine, not for a schedule
	}
	// The next tick comes while it runs. Make the list due again by
	// forgetting the slot, so that only SkipIfStillRunning stands in the
	// way of a second run.
	if err := e.st.PutListSchedule("daily", scheduleState("2026-11-26T06:00:00Z")); err != nil {
		t.Fatal(err)
	}
	e.clock.set(e.clock.Now().Add(time.Minute))
	s.Tick(context.Background())
	close(w.block)
	s.Wait()
	if n := w.starts.Load(); n != 1 {
		t.Errorf("StartWith ran %d times, want 1 (the second tick skipped)", n)
	}
	if !strings.Contains(e.logs.String(), "still going; this tick skips it") {
		t.Errorf("the skip was not logged:\n%s", e.logs)
	}
	if n := len(e.srv.Messages()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

func TestManualTriggerThroughTheScheduler(t *testing.T) {
	e := newEnv(t, at("2026-11-27T10:00:00Z"))
	e.list(t, "daily", "", at("2026-11-20T00:00:00Z"))
	e.stories(t, e.clock.Now(), 3, "e")
	e.readers(t, "daily", 4)
	s := e.scheduler()
	if _, err := s.Trigger("daily", false); err == nil {
		t.Fatal("a trigger before Run was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var ed digest.Edition
	var err error
	for i := 0; i < 5000; i++ { // until Run has set its context
		if ed, err = s.Trigger("daily", false); err == nil || !strings.Contains(err.Error(), "not running") {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if _, err := s.Trigger("daily", false); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("second trigger: %v, want refused", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := e.st.GetEdition(ed.ID)
	if got.Sent != 4 || len(e.srv.Messages()) != 4 {
		t.Errorf("edition %s: %d sent, %d messages; want 4", ed.ID, got.Sent, len(e.srv.Messages()))
	}
}

func scheduleState(lastSlot string) schedule.ListState {
	return schedule.ListState{LastSlot: at(lastSlot), LastResult: "sent"}
}
