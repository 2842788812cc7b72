package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"newsdigest/digest"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// Store is what the engine needs of storage.
type Store interface {
	GetList(name string) (subscribers.List, error)
	GetSubscriber(email string) (subscribers.Subscriber, error)
	ConfirmedEmails(list, after string, limit int) ([]string, error)
	Articles(since time.Time) ([]digest.Article, error)
	SentArticles(list string, since time.Time) (map[string]bool, error)
	CreateEdition(e digest.Edition) (bool, error)
	GetEdition(id string) (digest.Edition, error)
	UpdateEdition(id string, fn func(*digest.Edition) error) (digest.Edition, error)
	QueueDeliveries(editionID string, emails []string) (int, error)
	PendingDeliveries(editionID, after string, limit int) ([]digest.Delivery, error)
	// PendingRecipients pages through the queued records with each
	// recipient's subscriber record and suppression reason, read in one
	// transaction; fn must only copy. The subscriber need only hold what
	// a send uses: ID, Email, Name, Timezone, SendHour, Frequency,
	// Topics, Attrs and the membership of the edition's list (the bbolt
	// store leaves Consent, Created, Updated and other lists'
	// memberships out).
	PendingRecipients(editionID, after string, limit int, fn func(d digest.Delivery, sub subscribers.Subscriber, suppressed string)) (int, error)
	CountPending(editionID string) (int, error)
	RecordDeliveries(ds []digest.Delivery) error
	Suppressed(email string) (reason string, ok bool, err error)
	Suppress(email, reason string, at time.Time) error
}

// Transport carries encoded messages: an SMTP session, or a directory of
// .eml files for dry runs. Each worker dials its own. Send delivers the
// concatenation of parts (CRLF line ends; e.g. a DKIM-Signature field and
// the message from Engine.Message) to env's recipients; an error that is a
// *mailer.SendError says whether to retry and whether the server kept the
// message anyway.
type Transport interface {
	Send(ctx context.Context, env mailer.Envelope, parts ...[]byte) error
	Close() error
}

// Pipeliner is a Transport that can start the transaction of the message
// it will be asked to send next together with this one (see
// mailer.Conn.SendRawThen). The engine announces only a message it is
// about to send, but may, when stopping, send another or none.
type Pipeliner interface {
	SendThen(ctx context.Context, env mailer.Envelope, next *mailer.Envelope, parts ...[]byte) error
}

// Beginner is a Transport that can send a message in two halves (see
// mailer.Conn.BeginRaw): Begin starts the transaction and sends the
// content but not its terminator, so the server cannot accept it yet;
// Finish sends the terminator (and, when next is set, starts next's
// transaction as Pipeliner does) and reports the outcome; Abort gives a
// begun message up, and the server drops it.
type Beginner interface {
	Begin(ctx context.Context, env mailer.Envelope, parts ...[]byte) error
	Finish(ctx context.Context, next *mailer.Envelope) error
	Abort()
}

// Dialer opens a Transport.
type Dialer func(ctx context.Context) (Transport, error)

// Engine builds and sends editions. Fill the fields, then call its methods;
// an Engine may serve several sends one after another.
type Engine struct {
	Store    Store
	Renderer *render.Renderer
	Dial     Dialer
	Signer   *subscribers.Signer
	Clock    digest.Clock
	Log      *slog.Logger

	BaseURL           string // public base URL for unsubscribe and preference links
	Brand             render.Brand
	UnsubscribeMailto string // mailto target for List-Unsubscribe; default the list's From
	// BounceAddress is the base of VERP return paths
	// (bounces@bounce.example.org); empty: the return path is the From.
	BounceAddress string
	// Metrics, if set, is told of final outcomes, retries, the queue and
	// each run's duration.
	Metrics Metrics
	// TrackClicks sends story links of sent editions through the click
	// redirect under BaseURL (see SentView).
	TrackClicks bool

	Workers    int           // concurrent transports; default 1
	Limiter    *rate.Limiter // shared by all workers; nil = no limit
	MaxRetries int           // on temporary failures; default 3
	RetryBase  time.Duration // first back-off; default 1s
	// PauseErrors pauses the edition when this share (0–1] of the last
	// PauseWindow SMTP attempts failed; 0 never pauses.
	PauseErrors float64
	// DomainConcurrency caps the messages in flight at once to one
	// recipient domain, across workers; 0 = no cap.
	DomainConcurrency int
	// DKIM, if set, signs every message over the bytes that are sent.
	DKIM *mailer.DKIM
	// Progress, if set, is called after each recorded delivery with the
	// number done and the total for this run. It runs on the ledger
	// writer: keep it quick.
	Progress func(done, total int)
	// GroupWait is the longest an outcome waits for others to share its
	// ledger commit; a commit starts sooner once every running worker
	// waits on it. 0 = DefaultGroupWait; negative: commit whatever is
	// waiting at once.
	GroupWait time.Duration
	// History is how long a story sent to a subscriber keeps them from
	// getting it again (never-repeat); 0 = DefaultHistory (30 days); a
	// negative value turns per-subscriber history off.
	History time.Duration
}

// DefaultGroupWait is Engine.GroupWait's default. A commit costs two
// fdatasyncs (here about 300 µs of CPU and 600 µs of waiting) whatever
// its size, so a commit should wait for every worker: it starts as soon as
// all of them wait on it, and the group wait only bounds how long a slow
// session can hold the others. It is longer than a worker's turn at a few
// thousand messages a second over 64 sessions (about 15 ms): with 10 ms,
// commits started with two thirds of the workers and cost the bench about
// 15 µs of CPU per message more.
const DefaultGroupWait = 25 * time.Millisecond

// maxGroup caps the outcomes of one ledger commit.
const maxGroup = 512

// PauseWindow is how many recent SMTP attempts Engine.PauseErrors looks at.
const PauseWindow = 100

// ErrPaused is wrapped by Deliver's error when the edition was paused:
// too many failures, no transport, or a stop. Resume continues it.
var ErrPaused = errors.New("edition paused")

// ErrNothingNew is returned when an edition would have no new stories.
var ErrNothingNew = errors.New("no new stories since the last edition")

// SeenWindow is how far back a list's earlier editions count when deciding
// whether a story is new.
const SeenWindow = 30 * 24 * time.Hour

func (e *Engine) now() time.Time {
	if e.Clock == nil {
		return time.Now()
	}
	return e.Clock.Now()
}

func (e *Engine) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// PolicyOf returns the selection policy of a list.
func PolicyOf(l subscribers.List) digest.Policy {
	return digest.Policy{
		TopCount: l.TopCount, RecentCount: l.RecentCount, Window: l.Window,
		MinStories: l.MinStories, CategoryCap: l.CategoryCap,
	}.WithDefaults()
}

// Build selects the stories for the list's edition at the engine's now
// for its manual slot (ManualSlot): the candidate pool each recipient's
// copy is derived from, and the stories of a reader without topics or
// history, leaving out those sent in the list's earlier editions. The
// editor's next intro and subject are set. It stores nothing. When fewer
// than the list's minimum of new stories remain it returns the edition
// and ErrNothingNew.
func (e *Engine) Build(list subscribers.List) (digest.Edition, error) {
	now := e.now()
	return e.BuildAt(list, ManualSlot(list, now), now)
}

// BuildAt is Build for the given slot, with the stories as of now.
func (e *Engine) BuildAt(list subscribers.List, slot, now time.Time) (digest.Edition, error) {
	return e.build(list, slot, now, false)
}

// build is BuildAt; perReader leaves out nothing list-wide: "new" is
// judged per reader only (by their history).
func (e *Engine) build(list subscribers.List, slot, now time.Time, perReader bool) (digest.Edition, error) {
	p := PolicyOf(list)
	arts, err := e.Store.Articles(now.Add(-max(p.Window, WeekWindow)))
	if err != nil {
		return digest.Edition{}, err
	}
	seen := map[string]bool{}
	if !perReader {
		if seen, err = e.Store.SentArticles(list.Name, now.Add(-SeenWindow)); err != nil {
			return digest.Edition{}, err
		}
	}
	sel := digest.Select(arts, p, now, func(id string) bool { return seen[id] })
	slot = slot.UTC().Truncate(time.Minute)
	ed := digest.Edition{
		ID: digest.EditionID(list.Name, slot), List: list.Name, Slot: slot,
		Stories: sel, Status: digest.EditionSending, Created: now,
		Intro: list.NextIntro, Subject: list.NextSubject,
	}
	if e.historyStore() != nil {
		ed.Pool = buildPool(arts, p, now)
	}
	if sel.Len() < p.MinStories {
		return ed, fmt.Errorf("%w (%d new, list %s needs %d)", ErrNothingNew, sel.Len(), list.Name, p.MinStories)
	}
	return ed, nil
}

// View is the shared rendering input of an edition.
func (e *Engine) View(list subscribers.List, ed digest.Edition) render.View {
	return render.View{List: list, Edition: ed, Brand: e.Brand}
}

// SentView is View for the messages of a recorded edition: with
// TrackClicks, story links become BASE/c/{token}, where the token is
// signed (subscribers.PurposeClick) and names only the article and the
// edition; the click handler redirects to the link stored in the edition.
// Previews, test copies and dry runs use View: their edition is not
// recorded, so they keep the original links.
func (e *Engine) SentView(list subscribers.List, ed digest.Edition) render.View {
	v := e.View(list, ed)
	if e.TrackClicks && e.Signer != nil && e.BaseURL != "" {
		base := strings.TrimRight(e.BaseURL, "/")
		v.LinkFor = func(articleID, _ string) string {
			return base + "/c/" + e.Signer.Sign(subscribers.PurposeClick, articleID, ed.ID, time.Time{})
		}
	}
	return v
}

// Start builds the list's edition now for its manual slot, records it and
// queues a delivery for every confirmed subscriber of the list. It
// returns the edition, whether it is new (false: an edition for the same
// slot already exists and is returned as it is), and ErrNothingNew when
// there is nothing to send.
func (e *Engine) Start(listName string) (digest.Edition, bool, error) {
	return e.StartWith(listName, StartOptions{})
}

// StartOptions say which edition StartWith makes.
type StartOptions struct {
	// Slot is the moment the edition is for; zero: the list's manual
	// slot at now (ManualSlot).
	Slot time.Time
	// ID overrides digest.EditionID(list, Slot).
	ID string
	// ForceNew makes a new edition even if one exists for the slot: its
	// ID gets a suffix (-2, -3…).
	ForceNew bool
	// NoRecipients records the edition without queueing anyone (a
	// local-time edition queues its readers as they become due).
	NoRecipients bool
	// PerReader judges what is new per reader only, by their history,
	// not by the list's earlier editions (local-time editions, whose
	// readers come at different hours of the same day).
	PerReader bool
}

// StartWith is Start with options.
func (e *Engine) StartWith(listName string, o StartOptions) (digest.Edition, bool, error) {
	list, err := e.Store.GetList(listName)
	if err != nil {
		return digest.Edition{}, false, err
	}
	now := e.now()
	if o.Slot.IsZero() {
		o.Slot = ManualSlot(list, now)
	}
	if !o.ForceNew {
		// The slot's edition exists: return it as it is, before looking
		// for stories (a second trigger is refused, not "nothing new").
		id := o.ID
		if id == "" {
			id = digest.EditionID(list.Name, o.Slot.UTC().Truncate(time.Minute))
		}
		if ed, err := e.Store.GetEdition(id); err == nil {
			return ed, false, nil
		}
	}
	ed, err := e.build(list, o.Slot, now, o.PerReader && e.historyStore() != nil)
	if o.ID != "" {
		ed.ID = o.ID
	}
	if err != nil {
		return ed, false, err
	}
	prep, err := e.Renderer.Prepare(e.View(list, ed))
	if err != nil {
		return ed, false, err
	}
	ed.Subject = prep.Subject
	base := ed.ID
	created := false
	for n := 2; ; n++ {
		if created, err = e.Store.CreateEdition(ed); err != nil || created || !o.ForceNew {
			break
		}
		ed.ID = fmt.Sprintf("%s-%d", base, n)
	}
	if err != nil {
		return ed, false, err
	}
	if !created {
		ed, err = e.Store.GetEdition(ed.ID)
		return ed, false, err
	}
	e.clearNext(list, ed)
	if o.NoRecipients {
		return ed, true, nil
	}
	const page = 1000
	after := ""
	for n := 1; ; n++ {
		if n%4 == 0 {
			e.releaseMapped() // queueing reads every subscriber record once
		}
		emails, err := e.Store.ConfirmedEmails(list.Name, after, page)
		if err != nil {
			return ed, true, err
		}
		if len(emails) == 0 {
			break
		}
		if _, err := e.Store.QueueDeliveries(ed.ID, emails); err != nil {
			return ed, true, err
		}
		after = emails[len(emails)-1]
	}
	e.releaseMapped()
	return ed, true, nil
}

// releaseMapped gives back the database pages the process has read, when
// the store can (see releaser).
func (e *Engine) releaseMapped() {
	if rs, ok := e.Store.(releaser); ok {
		if err := rs.ReleaseMapped(); err != nil {
			e.log().Warn("releasing database pages", "err", err)
		}
	}
}

// Result sums up one run of Deliver.
type Result struct {
	Edition    string
	Sent       int
	Failed     int
	Suppressed int
	Skipped    int // no copy due (not their day, nothing new): no message
	Elapsed    time.Duration
	// Commits is how many ledger transactions recorded the outcomes
	// (each costs two fdatasyncs): Sent+Failed+Suppressed+Skipped over
	// Commits is the average group.
	Commits int
}

func (r Result) String() string {
	skipped := ""
	if r.Skipped > 0 {
		skipped = fmt.Sprintf(", %d skipped (no copy due: not their day, or nothing new for them)", r.Skipped)
	}
	return fmt.Sprintf("edition %s: %d sent, %d failed, %d suppressed%s in %s",
		r.Edition, r.Sent, r.Failed, r.Suppressed, skipped, r.Elapsed.Round(time.Millisecond))
}

// job is one queued delivery with what the store knew of its recipient
// when its page was read.
type job struct {
	d          digest.Delivery
	sub        subscribers.Subscriber
	suppressed string          // suppression reason; "" = not suppressed
	seen       map[string]bool // stories sent to them before
}

// record is an outcome on its way to the ledger. done, when set, receives
// the commit's error once the record is durable (or not). A sent record
// carries the recipient's stories for their history.
type record struct {
	d       digest.Delivery
	done    chan error
	stories []string
}

// stopCause says why a run stopped early.
type stopCause struct {
	reason string // for the edition's Reason
	err    error
	pause  bool // mark the edition paused (false: already paused by an operator)
}

func (c *stopCause) Error() string { return c.reason }
func (c *stopCause) Unwrap() error { return c.err }

// releaser is a Store that can give back the memory-mapped pages of its
// file that the process has read (boltstore.Store.ReleaseMapped): a send
// reads each recipient's records once, so without it the process's
// resident memory grows with the database.
type releaser interface{ ReleaseMapped() error }

// releaseEvery is how many feeder pages pass between releases.
const releaseEvery = 8

// feedPage is how many queued deliveries the feeder reads per transaction.
// Subscriber status and suppressions are checked when the page is read,
// moments before the messages go out.
const feedPage = 256

// Deliver sends every queued delivery of the edition and records each
// outcome in the ledger. It can be called again after a stop, a pause or
// a crash: only deliveries still queued are sent (a paused edition goes
// back to sending). Pausing the edition in the store while it runs
// ('editions pause') stops it after the current page.
//
// Outcomes are group-committed: the ledger writer gathers outcomes until
// every running worker waits on one (or GroupWait passed) and commits them
// together, and a worker does not let the server accept its next message
// (it may send the content, not the terminator) before the outcome of its
// previous message is durable. So at any moment at most Workers messages
// are accepted by the server without being recorded as sent, and a kill
// -9 sends at most that many twice on resume.
//
// When ctx is cancelled, when no transport can be opened, or when
// PauseErrors is passed, it stops taking new messages, lets those in
// flight finish, commits their outcomes, marks the edition paused with the
// reason and returns an error wrapping ErrPaused (and ctx's error after a
// cancel). Queued deliveries stay queued.
func (e *Engine) Deliver(ctx context.Context, editionID string) (Result, error) {
	start := time.Now()
	res := Result{Edition: editionID}
	ed, err := e.Store.GetEdition(editionID)
	if err != nil {
		return res, err
	}
	list, err := e.Store.GetList(ed.List)
	if err != nil {
		return res, fmt.Errorf("edition %s: %w", ed.ID, err)
	}
	prep, err := e.Renderer.Prepare(e.SentView(list, ed))
	if err != nil {
		return res, err
	}
	comp, err := e.newComposer(list, ed)
	if err != nil {
		return res, err
	}
	pending, err := e.Store.CountPending(ed.ID)
	if err != nil {
		return res, err
	}
	e.releaseMapped() // counting walked every queued key's page
	hs := e.historyStore()
	if pending == 0 {
		if ed.Status == digest.EditionPaused {
			// Resuming a paused edition with nobody left to send to
			// finishes it.
			if _, err := e.Store.UpdateEdition(ed.ID, func(x *digest.Edition) error {
				if x.Status == digest.EditionPaused {
					x.Status, x.Reason = digest.EditionSent, ""
					if x.Finished.IsZero() {
						x.Finished = e.now()
					}
				}
				return nil
			}); err != nil {
				return res, err
			}
		}
		res.Elapsed = time.Since(start)
		return res, nil
	}
	if ed.Status == digest.EditionPaused {
		// Delivering a paused edition resumes it.
		if ed, err = e.Store.UpdateEdition(ed.ID, func(x *digest.Edition) error {
			if x.Status == digest.EditionPaused {
				x.Status, x.Reason = digest.EditionSending, ""
			}
			return nil
		}); err != nil {
			return res, err
		}
	}
	workers := min(max(e.Workers, 1), pending)

	stopCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	r := &run{
		e: e, list: list, ed: ed, prep: prep, comp: comp,
		stopCtx: stopCtx, stop: stop, sendCtx: context.WithoutCancel(stopCtx),
		out:      newOutbox(workers),
		window:   newFailWindow(PauseWindow),
		gate:     newDomainGate(e.DomainConcurrency),
		variants: &variants{e: e, list: list, ed: ed, view: e.SentView},
	}
	// The edition's own stories are one variant, rendered above.
	r.variants.seed(variantKey(false, ed.Stories), prep)
	// Each worker holds two jobs (one to send, one ahead): the feeder
	// refills the queue before it runs that low.
	jobs := newJobQueue(workers * 2)

	// Feeder: pages through the queued deliveries without holding a
	// transaction while mail is sent.
	feedErr := make(chan error, 1)
	go func() {
		defer jobs.close()
		after := ""
		page := make([]job, 0, feedPage)
		pages := 0
		for {
			// Read the next page only when the workers are about to need
			// it, so that what it says of each recipient (status,
			// suppression, history) is at most a queue's length old.
			if !jobs.waitLow(stopCtx) {
				feedErr <- nil
				return
			}
			page = page[:0]
			_, err := e.Store.PendingRecipients(ed.ID, after, feedPage, func(d digest.Delivery, sub subscribers.Subscriber, sup string) {
				if sub.Email == "" {
					sub.Email = d.Email
				}
				page = append(page, job{d: d, sub: sub, suppressed: sup})
			})
			if err != nil {
				feedErr <- err
				stop(&stopCause{reason: "reading the queue: " + err.Error(), err: err})
				return
			}
			if len(page) == 0 {
				feedErr <- nil
				return
			}
			if pages++; pages%releaseEvery == 0 {
				e.releaseMapped()
			}
			after = page[len(page)-1].d.Email
			if hs != nil {
				// The page's readers' histories, in one read.
				ids := make([]string, 0, len(page))
				for _, j := range page {
					ids = append(ids, j.d.Email)
				}
				seen, err := hs.SeenStories(ids, e.now().Add(-e.history()))
				if err != nil {
					feedErr <- err
					stop(&stopCause{reason: "reading the history: " + err.Error(), err: err})
					return
				}
				for i := range page {
					page[i].seen = seen[page[i].d.Email]
				}
			}
			jobs.add(page)
		}
	}()

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.out.workerDone()
			w := &worker{r: r, done: make(chan error, 1)}
			defer w.close()
			w.loop(jobs)
		}()
	}
	go func() { wg.Wait(); r.out.close() }()

	// Ledger writer: group commit. It gathers outcomes until every worker
	// still running waits on one of them (no other sent message can come
	// before this commit) or GroupWait has passed since the first, commits
	// them in one transaction, and tells the workers waiting on them. A
	// commit costs two fdatasyncs whatever its size, so the larger the
	// group, the less each message pays.
	var recordErr error
	done := 0
	if e.Metrics != nil {
		e.Metrics.QueueDepth(pending)
		defer func() { e.Metrics.QueueDepth(done - pending); e.Metrics.EditionDone(time.Since(start)) }()
	}
	batch := make([]record, 0, maxGroup)
	ds := make([]digest.Delivery, 0, maxGroup)
	groupWait := e.GroupWait
	if groupWait == 0 {
		groupWait = DefaultGroupWait
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var ok bool
		if batch, ok = r.out.take(groupWait, timer, batch); !ok {
			break
		}
		ds = ds[:0]
		var hist map[string][]string
		for _, rec := range batch {
			ds = append(ds, rec.d)
			if hs != nil && rec.d.Status == digest.DeliverySent && len(rec.stories) > 0 {
				if hist == nil {
					hist = make(map[string][]string)
				}
				hist[rec.d.Email] = rec.stories
			}
		}
		var err error
		if hs != nil {
			now := e.now()
			err = hs.RecordDeliveriesWithHistory(ds, hist, now, now.Add(-e.history()))
		} else {
			err = e.Store.RecordDeliveries(ds)
		}
		res.Commits++
		if err != nil && recordErr == nil {
			recordErr = err
			stop(&stopCause{reason: "recording deliveries: " + err.Error(), err: err})
		}
		// An operator may pause the edition while it is sent ('editions
		// pause', the admin API): look after each commit, so that the
		// send stops within a commit or so.
		if err == nil && stopCtx.Err() == nil {
			if st, reason, serr := e.editionStatus(ed.ID); serr == nil && st == digest.EditionPaused {
				stop(&stopCause{reason: orDefault(reason, "paused by an operator")})
			}
		}
		for _, rec := range batch {
			if rec.done != nil {
				rec.done <- err
			}
			if err != nil {
				continue
			}
			switch rec.d.Status {
			case digest.DeliverySent:
				res.Sent++
			case digest.DeliveryFailed:
				res.Failed++
			case digest.DeliverySuppressed:
				res.Suppressed++
			case digest.DeliverySkipped:
				res.Skipped++
			}
			done++
			e.observe(rec.d.Status)
			if e.Progress != nil {
				e.Progress(done, pending)
			}
		}
	}
	res.Elapsed = time.Since(start)
	if err := <-feedErr; err != nil {
		return res, err
	}
	if recordErr != nil {
		return res, fmt.Errorf("recording deliveries: %w", recordErr)
	}
	var cause *stopCause
	if errors.As(context.Cause(stopCtx), &cause) {
		if cause.pause {
			e.pause(ed.ID, cause.reason)
		}
		return res, fmt.Errorf("edition %s %w: %s", ed.ID, ErrPaused, cause.reason)
	}
	if ctx.Err() != nil {
		e.pause(ed.ID, "stopped by signal")
		return res, fmt.Errorf("edition %s stopped: %w (%w)", ed.ID, ctx.Err(), ErrPaused)
	}
	return res, nil
}

// StatusStore is a Store that reads an edition's status alone, cheaper
// than GetEdition (the bbolt store does).
type StatusStore interface {
	EditionStatus(id string) (status digest.EditionStatus, reason string, err error)
}

// editionStatus returns the status of edition id and the reason it is
// paused.
func (e *Engine) editionStatus(id string) (digest.EditionStatus, string, error) {
	if ss, ok := e.Store.(StatusStore); ok {
		return ss.EditionStatus(id)
	}
	ed, err := e.Store.GetEdition(id)
	return ed.Status, ed.Reason, err
}

func (e *Engine) pause(id, reason string) {
	_, err := e.Store.UpdateEdition(id, func(ed *digest.Edition) error {
		if ed.Status == digest.EditionSending {
			ed.Status, ed.Reason = digest.EditionPaused, reason
		}
		return nil
	})
	if err != nil {
		e.log().Error("pausing edition", "edition", id, "err", err)
	}
}

// outbox is where workers leave outcomes for the ledger writer. The
// writer sleeps until the first outcome of a group arrives, then until the
// group is complete (every running worker waits on an outcome in it, it
// holds maxGroup, or the workers are all done) or the group wait has
// passed: it wakes about twice per commit, not once per outcome.
type outbox struct {
	mu      sync.Mutex
	recs    []record
	waiters int // outcomes in recs whose worker waits for their commit
	running int // workers still in their loop
	closed  bool
	kick    chan struct{} // cap 1: the writer has something to look at
}

func newOutbox(workers int) *outbox {
	return &outbox{running: workers, kick: make(chan struct{}, 1), recs: make([]record, 0, maxGroup)}
}

// completeLocked says whether no outcome worth waiting for can come.
func (o *outbox) completeLocked() bool {
	return o.closed || len(o.recs) >= maxGroup || o.waiters > 0 && o.waiters >= o.running
}

func (o *outbox) signal() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// put leaves an outcome; rec.done, when set, gets the commit's error.
func (o *outbox) put(rec record) {
	o.mu.Lock()
	o.recs = append(o.recs, rec)
	if rec.done != nil {
		o.waiters++
	}
	wake := len(o.recs) == 1 || o.completeLocked()
	o.mu.Unlock()
	if wake {
		o.signal()
	}
}

// workerDone tells that a worker left its loop: it puts nothing more.
func (o *outbox) workerDone() {
	o.mu.Lock()
	o.running--
	wake := len(o.recs) > 0 && o.completeLocked()
	o.mu.Unlock()
	if wake {
		o.signal()
	}
}

// close tells that every worker is done.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

// take waits for a group of outcomes (see outbox) and moves it to
// dst[:0]; false when the outbox is closed and empty. wait ≤ 0 takes what
// is there as soon as there is something.
func (o *outbox) take(wait time.Duration, timer *time.Timer, dst []record) ([]record, bool) {
	for {
		o.mu.Lock()
		n, closed := len(o.recs), o.closed
		o.mu.Unlock()
		if n > 0 {
			break
		}
		if closed {
			return dst[:0], false
		}
		<-o.kick
	}
	if wait > 0 {
		timer.Reset(wait)
		defer timer.Stop()
	}
	for {
		o.mu.Lock()
		if wait <= 0 || o.completeLocked() {
			break
		}
		o.mu.Unlock()
		select {
		case <-o.kick:
			continue
		case <-timer.C:
			o.mu.Lock()
		}
		break
	}
	dst = append(dst[:0], o.recs...)
	clear(o.recs) // drop the references to stories and channels
	o.recs, o.waiters = o.recs[:0], 0
	o.mu.Unlock()
	return dst, true
}

// run is the state one Deliver call shares between its workers.
type run struct {
	e       *Engine
	list    subscribers.List
	ed      digest.Edition
	prep    *render.Prepared
	comp    *composer // per-edition message parts
	stopCtx context.Context
	stop    context.CancelCauseFunc
	// sendCtx is stopCtx without its cancel: a transaction once begun
	// finishes even when a stop comes.
	sendCtx context.Context
	out     *outbox // outcomes on their way to the ledger writer
	window  *failWindow
	gate    *domainGate
	// variants renders each distinct copy once (per-subscriber content).
	variants *variants
}

// observe counts one SMTP attempt towards the pause threshold.
func (r *run) observe(failed bool, reply string) {
	if r.e.PauseErrors <= 0 {
		return
	}
	n, fails := r.window.add(failed)
	if n >= PauseWindow && float64(fails) >= r.e.PauseErrors*float64(n) {
		r.stop(&stopCause{pause: true, reason: fmt.Sprintf("%d of the last %d attempts failed (smtp.pause_errors = %g); last reply: %s",
			fails, n, r.e.PauseErrors, reply)})
	}
}

// failWindow is a ring of the last attempts' outcomes.
type failWindow struct {
	mu    sync.Mutex
	ring  []bool
	next  int
	n     int
	fails int
}

func newFailWindow(size int) *failWindow { return &failWindow{ring: make([]bool, size)} }

// add records one outcome and returns the attempts in the window and the
// failures among them.
func (w *failWindow) add(failed bool) (n, fails int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == len(w.ring) {
		if w.ring[w.next] {
			w.fails--
		}
	} else {
		w.n++
	}
	w.ring[w.next] = failed
	if failed {
		w.fails++
	}
	w.next = (w.next + 1) % len(w.ring)
	return w.n, w.fails
}

// domainGate caps the messages in flight per recipient domain.
type domainGate struct {
	max int
	mu  sync.Mutex
	sem map[string]chan struct{}
}

func newDomainGate(max int) *domainGate {
	return &domainGate{max: max, sem: make(map[string]chan struct{})}
}

// acquire waits for a slot for domain; false when ctx is done first.
func (g *domainGate) acquire(ctx context.Context, domain string) bool {
	if g.max <= 0 {
		return true
	}
	g.mu.Lock()
	s := g.sem[domain]
	if s == nil {
		s = make(chan struct{}, g.max)
		g.sem[domain] = s
	}
	g.mu.Unlock()
	select {
	case s <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (g *domainGate) release(domain string) {
	if g.max <= 0 {
		return
	}
	g.mu.Lock()
	s := g.sem[domain]
	g.mu.Unlock()
	<-s
}

func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

// Recipient returns the per-recipient values of sub's copy of list's
// edition: unsubscribe and preference links carrying signed tokens.
func (e *Engine) Recipient(list subscribers.List, sub subscribers.Subscriber) render.Recipient {
	rc := render.Recipient{Name: sub.Name, Email: sub.Email}
	if e.Signer != nil && sub.ID != "" {
		base := strings.TrimRight(e.BaseURL, "/")
		rc.UnsubscribeURL = base + "/unsubscribe/" + e.Signer.Sign(subscribers.PurposeUnsubscribe, sub.ID, list.Name, time.Time{})
		rc.PreferencesURL = base + "/preferences/" + e.Signer.Sign(subscribers.PurposePreferences, sub.ID, list.Name, time.Time{})
	}
	return rc
}

type worker struct {
	r   *run
	tr  Transport
	buf bytes.Buffer // where prepare composes
	// spare holds the last message prepared (its parts point into it)
	// while the one after it is prepared in buf: a worker holds two
	// messages, the one it sends and the one whose transaction starts
	// with it.
	spare bytes.Buffer
	done  chan error // the ledger's answer for this worker's last sent message
	wait  bool       // a sent message's outcome is not durable yet
}

// outgoing is a prepared message waiting for its turn.
type outgoing struct {
	j       job
	d       digest.Delivery
	env     mailer.Envelope
	parts   [][]byte
	stories []string
}

func (w *worker) close() {
	if w.tr != nil {
		w.tr.Close()
	}
}

// durable waits until the outcome of the worker's previous sent message is
// committed. false: the ledger failed, stop.
func (w *worker) durable() bool {
	if !w.wait {
		return true
	}
	w.wait = false
	return <-w.done == nil
}

func (w *worker) loop(jobs *jobQueue) {
	r := w.r
	var cur *outgoing
	open := true
	for {
		if cur == nil {
			if !open {
				break
			}
			j, got, _ := jobs.take(true)
			if !got {
				break
			}
			cur = w.take(j)
			continue
		}
		// Look ahead, without waiting, for the next message to send, so
		// that its transaction starts in the same write as cur's content.
		// Preparing it also overlaps the commit of the previous outcome.
		var next *outgoing
	ahead:
		for open && next == nil {
			var j job
			var got bool
			if j, got, open = jobs.take(false); !got {
				break ahead
			}
			next = w.take(j)
		}
		// send waits for the previous outcome to be durable before the
		// server can accept cur (with a Beginner, after cur's content is
		// on its way).
		if r.stopCtx.Err() != nil {
			cur = next // stopping: both stay queued
			continue
		}
		// With per-domain caps, a transaction starts only under the cap:
		// no announcing.
		var nextEnv *mailer.Envelope
		if next != nil && r.gate.max <= 0 {
			nextEnv = &next.env
		}
		d, final := w.send(cur.j.d.Email, cur.d, cur.env, nextEnv, cur.parts)
		switch {
		case !final: // still queued
		case d.Status == digest.DeliverySent:
			r.out.put(record{d: d, done: w.done, stories: cur.stories})
			w.wait = true
		default:
			r.out.put(record{d: d})
		}
		cur = next
	}
	w.durable()
}

// take prepares j's message. It returns it when it is to be sent, after
// moving it to w.spare; a delivery that is already final (suppressed,
// skipped, unbuildable) is passed to the ledger and take returns nil, as
// it does when the run is stopping (j stays queued).
func (w *worker) take(j job) *outgoing {
	r := w.r
	if r.stopCtx.Err() != nil {
		return nil
	}
	d, env, parts, stories, ready := w.prepare(j)
	if !ready {
		r.out.put(record{d: d})
		return nil
	}
	// The parts point into w.buf: keep them there, compose the next
	// message in the other buffer.
	w.buf, w.spare = w.spare, w.buf
	return &outgoing{j: j, d: d, env: env, parts: parts, stories: stories}
}

// prepare checks the recipient, derives their copy of the edition and
// composes their message into the worker's buffer. ready is false when d
// is already final (suppressed, not confirmed, nothing new for them, or a
// message that cannot be built). stories are the IDs of their copy's
// stories, for their history.
func (w *worker) prepare(j job) (d digest.Delivery, env mailer.Envelope, parts [][]byte, stories []string, ready bool) {
	r := w.r
	e := r.e
	d = j.d
	d.At = e.now()
	if j.suppressed != "" {
		d.Status, d.Reply = digest.DeliverySuppressed, "suppressed: "+j.suppressed
		return d, env, nil, nil, false
	}
	if st := j.sub.StatusOn(r.list.Name); st != subscribers.Confirmed {
		d.Status, d.Reply = digest.DeliverySuppressed, fmt.Sprintf("not confirmed on %s (%s)", r.list.Name, orNone(string(st)))
		return d, env, nil, nil, false
	}
	c := r.variants.content(j.sub, j.seen, j.d.At)
	if c.skip != "" {
		d.Status, d.Reply = digest.DeliverySkipped, c.skip
		return d, env, nil, nil, false
	}
	prep, err := r.variants.get(c)
	if err == nil {
		env, parts, err = r.comp.message(prep, j.sub, &w.buf)
	}
	if err != nil {
		d.Status, d.Reply = digest.DeliveryFailed, err.Error()
		return d, env, nil, nil, false
	}
	return d, env, parts, c.sel.ArticleIDs(), true
}

// send sends one prepared message, retrying temporary failures with
// back-off. final is false when the delivery stays queued (stopping).
func (w *worker) send(email string, d digest.Delivery, env mailer.Envelope, next *mailer.Envelope, parts [][]byte) (digest.Delivery, bool) {
	r := w.r
	e := r.e
	ctx := r.stopCtx
	retries := e.MaxRetries
	if retries <= 0 {
		retries = 3
	}
	backoff := e.RetryBase
	if backoff <= 0 {
		backoff = time.Second
	}
	domain := domainOf(email)
	for attempt := 1; ; attempt++ {
		d.Attempts = attempt
		if w.tr == nil {
			tr, err := e.Dial(r.sendCtx)
			if err != nil {
				r.observe(true, err.Error())
				if attempt > retries {
					// No transport at all: pause, leave it queued.
					r.stop(&stopCause{pause: true, reason: err.Error(), err: err})
					return d, false
				}
				if !sleep(ctx, jitter(backoff, attempt)) {
					return d, false
				}
				continue
			}
			w.tr = tr
		}
		if e.Limiter != nil {
			if err := e.Limiter.Wait(ctx); err != nil {
				return d, false // stopping: still queued
			}
		}
		if !r.gate.acquire(ctx, domain) {
			return d, false
		}
		// Once begun, a transaction finishes even if a stop comes. The
		// server may accept this message only once the worker's previous
		// outcome is durable (the crash bound): a Beginner sends the
		// content first, so the server reads it during that wait, and
		// the terminator after.
		var err error
		// (Not under per-domain caps: the domain's slot would be held
		// through the ledger wait.)
		bg, begins := w.tr.(Beginner)
		begins = begins && r.gate.max <= 0
		if begins {
			err = bg.Begin(r.sendCtx, env, parts...)
		}
		if err == nil {
			if !w.durable() {
				if begins {
					bg.Abort()
				}
				r.gate.release(domain)
				r.stop(nil)
				return d, false // the ledger failed: still queued
			}
			switch p, ok := w.tr.(Pipeliner); {
			case begins:
				err = bg.Finish(r.sendCtx, next)
			case ok && next != nil:
				err = p.SendThen(r.sendCtx, env, next, parts...)
			default:
				err = w.tr.Send(r.sendCtx, env, parts...)
			}
		}
		r.gate.release(domain)
		d.At = e.now()
		var se *mailer.SendError
		if err == nil || errors.As(err, &se) && se.Delivered {
			r.observe(false, "")
			d.Status, d.MessageID, d.Reply = digest.DeliverySent, env.MessageID, ""
			return d, true
		}
		d.Reply = err.Error()
		r.observe(true, d.Reply)
		temporary := true
		if se != nil {
			temporary = se.Temporary
			d.Reply = se.Reply
			if se.Code >= 500 && (strings.HasPrefix(se.Enhanced, "5.1.") || strings.Contains(se.Reply, " 5.1.")) {
				if err := e.Store.Suppress(email, "hard bounce: "+se.Reply, d.At); err != nil {
					e.log().Error("suppressing", "email", email, "err", err)
				}
			}
		}
		if !temporary || attempt > retries {
			d.Status = digest.DeliveryFailed
			return d, true
		}
		if ctx.Err() != nil {
			return d, false // stopping: still queued
		}
		// A dropped session is replaced before the retry.
		if se == nil || se.Code == 0 {
			w.tr.Close()
			w.tr = nil
		}
		if e.Metrics != nil {
			e.Metrics.Retry()
		}
		e.log().Warn("temporary failure, retrying", "email", email, "attempt", attempt, "reply", d.Reply)
		if !sleep(ctx, jitter(backoff, attempt)) {
			return d, false
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "not subscribed"
	}
	return s
}

// SMTPDialer returns a Dialer that opens an SMTP session with cfg through
// go-mail; each worker holds its own, reused across messages.
func SMTPDialer(cfg mailer.Config) Dialer {
	return func(ctx context.Context) (Transport, error) {
		c, err := mailer.Dial(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return smtpTransport{c}, nil
	}
}

type smtpTransport struct{ c *mailer.Conn }

func (t smtpTransport) Send(ctx context.Context, env mailer.Envelope, parts ...[]byte) error {
	return t.c.SendRaw(ctx, env, parts...)
}
func (t smtpTransport) SendThen(ctx context.Context, env mailer.Envelope, next *mailer.Envelope, parts ...[]byte) error {
	return t.c.SendRawThen(ctx, env, next, parts...)
}
func (t smtpTransport) Begin(ctx context.Context, env mailer.Envelope, parts ...[]byte) error {
	return t.c.BeginRaw(ctx, env, parts...)
}
func (t smtpTransport) Finish(ctx context.Context, next *mailer.Envelope) error {
	return t.c.FinishRaw(ctx, next)
}
func (t smtpTransport) Abort()       { t.c.AbortRaw() }
func (t smtpTransport) Close() error { return t.c.Close() }

// Metrics is what the engine reports to (digest/metrics implements it).
type Metrics interface {
	Delivery(st digest.DeliveryStatus) // a delivery reached a final state
	Retry()                            // a temporary failure will be retried
	QueueDepth(delta int)              // deliveries queued (+) or done (-)
	EditionDone(d time.Duration)       // a run of Deliver ended
}

func (e *Engine) observe(st digest.DeliveryStatus) {
	if e.Metrics != nil {
		e.Metrics.Delivery(st)
		e.Metrics.QueueDepth(-1)
	}
}

// ReturnPath returns the VERP envelope sender of sub's copy of ed
// (bounces+TOKEN@bounce-domain), the bare BounceAddress for a subscriber
// whose ID cannot be signed, or "" (the From) without a BounceAddress.
func (e *Engine) ReturnPath(list subscribers.List, ed digest.Edition, sub subscribers.Subscriber) string {
	if e.BounceAddress == "" {
		return ""
	}
	if e.Signer != nil {
		if tok, ok := e.Signer.SignBounce(sub.ID, list.Name, ed.Slot); ok {
			if addr, err := subscribers.VERPAddress(e.BounceAddress, tok); err == nil {
				return addr
			}
		}
	}
	return e.BounceAddress
}
