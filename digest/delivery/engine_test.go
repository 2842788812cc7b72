package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/capture"
	"newsdigest/digest/delivery"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

var now = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)

type fixture struct {
	store  *boltstore.Store
	srv    *capture.Server
	engine *delivery.Engine
	emails []string
}

// setup makes a real store with a list, three fresh articles and n
// confirmed subscribers, an in-process SMTP server, and an engine that
// sends to it through go-mail.
func setup(t *testing.T, n, workers int) *fixture {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "nd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Clock = digest.FixedClock(now)
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	if err := st.PutList(subscribers.List{Name: "daily", Title: "The Daily", From: "Gazette <digest@gazette.example>"}); err != nil {
		t.Fatal(err)
	}
	var arts []digest.Article
	for i := range 3 {
		link := fmt.Sprintf("https://gazette.example/story/%d", i)
		arts = append(arts, digest.Article{
			ID: digest.ArticleID("", link), Link: link, Title: fmt.Sprintf("Story %d", i),
			SummaryHTML: "<p>Something happened.</p>", SummaryText: "Something happened.",
			Published: now.Add(-time.Duration(i+1) * time.Hour), Views: int64(100 * (3 - i)),
		})
	}
	if _, _, err := st.UpsertArticles(arts); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st}
	var rows []subscribers.Row
	for i := range n {
		sub := subscribers.Subscriber{Email: fmt.Sprintf("reader%04d@example.org", i), Name: fmt.Sprintf("Reader %d", i), SendHour: -1, Frequency: subscribers.Daily}
		sub.SetStatus("daily", subscribers.Confirmed, now)
		rows = append(rows, subscribers.Row{Subscriber: sub})
		f.emails = append(f.emails, sub.Email)
	}
	if _, _, _, err := st.UpsertSubscribers(rows, false); err != nil {
		t.Fatal(err)
	}
	f.srv, err = capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.srv.Close() })
	r, err := render.New("")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := subscribers.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := mailer.Config{Host: f.srv.Host(), Port: f.srv.Port(), TLS: "none", Timeout: 5 * time.Second}
	f.engine = &delivery.Engine{
		Store: st, Renderer: r, Signer: signer, Clock: digest.FixedClock(now),
		BaseURL: "https://gazette.example/newsletter", Workers: workers,
		RetryBase: time.Millisecond,
		Dial:      delivery.SMTPDialer(cfg),
	}
	return f
}

// received counts the copies each address got.
func (f *fixture) received() map[string]int {
	got := map[string]int{}
	for _, m := range f.srv.Messages() {
		for _, to := range m.To {
			got[to]++
		}
	}
	return got
}

func (f *fixture) start(t *testing.T) digest.Edition {
	t.Helper()
	ed, created, err := f.engine.Start("daily")
	if err != nil || !created {
		t.Fatalf("Start: created=%v err=%v", created, err)
	}
	return ed
}

func TestDeliverSendsEachOnceAndRendersOnce(t *testing.T) {
	f := setup(t, 60, 3)
	ed := f.start(t)
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 60 || res.Failed != 0 {
		t.Errorf("result %v: want 60 sent", res)
	}
	got := f.received()
	for _, e := range f.emails {
		if got[e] != 1 {
			t.Errorf("%s received %d copies, want 1", e, got[e])
		}
	}
	// One premailer run to name the edition (Start), one to send it: not
	// one per recipient.
	if n := f.engine.Renderer.Inlines(); n != 2 {
		t.Errorf("premailer ran %d times for 60 recipients, want 2", n)
	}
	stored, err := f.store.GetEdition(ed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != digest.EditionSent || stored.Sent != 60 {
		t.Errorf("edition %+v: want sent with 60", stored)
	}
	ds, _ := f.store.Deliveries(ed.ID)
	for _, d := range ds {
		if d.Status != digest.DeliverySent || d.MessageID == "" {
			t.Errorf("ledger row %+v: want sent with a Message-ID", d)
			break
		}
	}

	// Running it again sends nothing; a new edition has nothing new.
	res, err = f.engine.Deliver(context.Background(), ed.ID)
	if err != nil || res.Sent != 0 {
		t.Errorf("second Deliver: %v, %v", res, err)
	}
	if _, created, err := f.engine.Start("daily"); created || err != nil {
		t.Errorf("second Start in the period: created=%v %v, want the existing edition", created, err)
	}
	if _, _, err := f.engine.StartWith("daily", delivery.StartOptions{ForceNew: true}); !errors.Is(err, delivery.ErrNothingNew) {
		t.Errorf("a forced new edition: %v, want ErrNothingNew", err)
	}
	if f.srv.Count() != 60 {
		t.Errorf("server received %d messages, want 60", f.srv.Count())
	}
}

func TestDeliverRetriesTemporaryFailuresAndSuppressesHardBounces(t *testing.T) {
	f := setup(t, 100, 4)
	hard := map[string]bool{f.emails[7]: true, f.emails[42]: true, f.emails[77]: true}
	var mu sync.Mutex
	attempts := map[string]int{}
	rng := rand.New(rand.NewPCG(1, 2))
	f.srv.SetReply(func(_, to string) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[to]++
		if hard[to] {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		// A random fifth is refused for now, at each attempt.
		if rng.IntN(5) == 0 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	})
	f.engine.MaxRetries = 8
	ed := f.start(t)
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := f.received()
	retried := 0
	for _, e := range f.emails {
		switch {
		case hard[e]:
			if got[e] != 0 || attempts[e] != 1 {
				t.Errorf("%s: received %d, tried %d times; want 0 and 1", e, got[e], attempts[e])
			}
			if _, ok, _ := f.store.Suppressed(e); !ok {
				t.Errorf("%s not suppressed after 550 5.1.1", e)
			}
		case got[e] != 1:
			t.Errorf("%s received %d copies, want exactly 1 (tried %d times)", e, got[e], attempts[e])
		}
		if attempts[e] > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Error("no recipient was retried: the 451 script did not run")
	}
	if res.Sent != 97 || res.Failed != 3 {
		t.Errorf("result %v: want 97 sent, 3 failed", res)
	}
	// The next edition skips the suppressed addresses without trying them.
	if _, _, err := f.store.UpsertArticles([]digest.Article{{ID: "new", Link: "https://gazette.example/new", Title: "New", Published: now}}); err != nil {
		t.Fatal(err)
	}
	f.engine.Clock = digest.FixedClock(now.Add(time.Minute))
	ed2, _, err := f.engine.StartWith("daily", delivery.StartOptions{ForceNew: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err = f.engine.Deliver(context.Background(), ed2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Suppressed != 3 || attempts[f.emails[7]] != 1 {
		t.Errorf("second edition: %v, hard bounce tried %d times; want 3 suppressed, tried once", res, attempts[f.emails[7]])
	}
}

func TestDeliverStopsAndResumesWithoutLosingAnyone(t *testing.T) {
	f := setup(t, 200, 4)
	ed := f.start(t)
	ctx, cancel := context.WithCancel(context.Background())
	f.engine.Progress = func(done, _ int) {
		if done == 50 {
			cancel()
		}
	}
	res, err := f.engine.Deliver(ctx, ed.ID)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped Deliver: %v, %v; want context.Canceled", res, err)
	}
	stopped, _ := f.store.GetEdition(ed.ID)
	if stopped.Status != digest.EditionPaused {
		t.Errorf("status after stop: %s, want paused", stopped.Status)
	}
	sentBefore := f.srv.Count()
	if sentBefore >= 200 {
		t.Fatalf("stop did not stop: %d sent", sentBefore)
	}
	// Every message the server accepted is recorded: the ledger and the
	// server agree.
	if stopped.Sent != sentBefore {
		t.Errorf("ledger says %d sent, server received %d", stopped.Sent, sentBefore)
	}

	f.engine.Progress = nil
	res, err = f.engine.Deliver(context.Background(), ed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 200-sentBefore {
		t.Errorf("resume sent %d, want the %d left", res.Sent, 200-sentBefore)
	}
	got := f.received()
	for _, e := range f.emails {
		if got[e] != 1 {
			t.Errorf("%s received %d copies, want 1", e, got[e])
		}
	}
	final, _ := f.store.GetEdition(ed.ID)
	if final.Status != digest.EditionSent || final.Sent != 200 {
		t.Errorf("edition after resume: %s, %d sent", final.Status, final.Sent)
	}
}

// An operator's pause ('editions pause', the admin API) while a send
// runs: the engine stops within a ledger commit or two, the edition stays
// paused with deliveries queued, and delivering again sends each of the
// rest once.
func TestDeliverStopsAtAnOperatorsPause(t *testing.T) {
	const readers = 700 // pages of 256: the pause comes while the first is sent
	f := setup(t, readers, 4)
	ed := f.start(t)
	f.engine.Progress = func(done, _ int) {
		if done == 20 {
			if _, err := f.store.UpdateEdition(ed.ID, func(x *digest.Edition) error {
				x.Status, x.Reason = digest.EditionPaused, "paused by the night editor"
				return nil
			}); err != nil {
				t.Error(err)
			}
		}
	}
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if !errors.Is(err, delivery.ErrPaused) || !strings.Contains(err.Error(), "night editor") {
		t.Fatalf("Deliver after a pause: %v, %v; want ErrPaused with the operator's reason", res, err)
	}
	sentBefore := f.srv.Count()
	pending, _ := f.store.PendingDeliveries(ed.ID, "", 0)
	paused, _ := f.store.GetEdition(ed.ID)
	if paused.Status != digest.EditionPaused || len(pending) == 0 || sentBefore+len(pending) != readers {
		t.Fatalf("after the pause: %s, %d sent, %d queued; want paused, %d in all, some queued", paused.Status, sentBefore, len(pending), readers)
	}
	// It stops within a commit or two of the pause: what the workers
	// hold (two each) and a group, not the rest of the page (256).
	if sentBefore > 20+4*2+16 {
		t.Errorf("%d sent after a pause at 20: the engine went on with its page", sentBefore)
	}

	f.engine.Progress = nil
	if res, err = f.engine.Deliver(context.Background(), ed.ID); err != nil || res.Sent != readers-sentBefore {
		t.Fatalf("resume: %v, %v; want the %d left sent", res, err, readers-sentBefore)
	}
	got := f.received()
	for _, e := range f.emails {
		if got[e] != 1 {
			t.Errorf("%s received %d copies, want 1", e, got[e])
		}
	}
}

// Resuming a paused edition with nobody left queued marks it sent.
func TestDeliverFinishesAPausedEditionWithNothingQueued(t *testing.T) {
	f := setup(t, 3, 1)
	ed := f.start(t)
	if _, err := f.engine.Deliver(context.Background(), ed.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateEdition(ed.ID, func(x *digest.Edition) error {
		x.Status, x.Reason = digest.EditionPaused, "paused by an operator"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	got, _ := f.store.GetEdition(ed.ID)
	if err != nil || res.Sent != 0 || got.Status != digest.EditionSent || got.Reason != "" || f.srv.Count() != 3 {
		t.Errorf("resume with nothing queued: %v, %v; edition %s %q; server got %d", res, err, got.Status, got.Reason, f.srv.Count())
	}
}

func TestDeliverSkipsThoseWhoLeftAfterQueueing(t *testing.T) {
	f := setup(t, 5, 1)
	ed := f.start(t)
	sub, err := f.store.GetSubscriber(f.emails[2])
	if err != nil {
		t.Fatal(err)
	}
	sub.SetStatus("daily", subscribers.Unsubscribed, now)
	if err := f.store.PutSubscriber(sub); err != nil {
		t.Fatal(err)
	}
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 4 || res.Suppressed != 1 || f.received()[f.emails[2]] != 0 {
		t.Errorf("result %v, unsubscribed got %d: want 4 sent, 1 suppressed, none to them", res, f.received()[f.emails[2]])
	}
}

func TestDeliverPausesWhenTheServerIsGone(t *testing.T) {
	f := setup(t, 10, 2)
	ed := f.start(t)
	f.srv.Close()
	f.engine.MaxRetries = 1
	_, err := f.engine.Deliver(context.Background(), ed.ID)
	if err == nil {
		t.Fatal("Deliver succeeded with no server")
	}
	got, _ := f.store.GetEdition(ed.ID)
	pending, _ := f.store.PendingDeliveries(ed.ID, "", 0)
	if got.Status != digest.EditionPaused || got.Reason == "" || len(pending) != 10 {
		t.Errorf("edition %s (%q) with %d queued: want paused with a reason and all 10 still queued", got.Status, got.Reason, len(pending))
	}
}

// Outcomes are committed in groups: with 8 workers, each commit waits
// until every running worker waits on it, so 240 messages take far fewer
// than 240 ledger transactions (each costs two fdatasyncs), and the
// ledger still ends with everyone sent once.
func TestDeliverGroupsLedgerCommits(t *testing.T) {
	f := setup(t, 240, 8)
	f.engine.GroupWait = time.Second // only "every worker waits" starts a commit early
	ed := f.start(t)
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if err != nil || res.Sent != 240 {
		t.Fatalf("Deliver: %v, %v", res, err)
	}
	if res.Commits == 0 || res.Commits > 240/4 {
		t.Errorf("%d ledger commits for 240 messages from 8 workers, want at most 60", res.Commits)
	}
	t.Logf("%d commits, %.1f outcomes each", res.Commits, 240/float64(res.Commits))
	for e, n := range f.received() {
		if n != 1 {
			t.Errorf("%s received %d copies", e, n)
		}
	}
}
