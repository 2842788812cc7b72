package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
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
	RecordDeliveries(ds []digest.Delivery) error
	Suppressed(email string) (reason string, ok bool, err error)
	Suppress(email, reason string, at time.Time) error
}

// Transport carries finished messages: an SMTP session, or a directory of
// .eml files for dry runs. Each worker dials its own.
type Transport interface {
	Send(ctx context.Context, m *mail.Msg) error
	Close() error
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

	Workers    int           // concurrent transports; default 1
	Limiter    *rate.Limiter // shared by all workers; nil = no limit
	MaxRetries int           // on temporary failures; default 3
	RetryBase  time.Duration // first back-off; default 1s
	BatchSize  int           // ledger records per commit; default 256
	// Progress, if set, is called after each recorded delivery with the
	// number done and the total for this run.
	Progress func(done, total int)
}

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

// Build selects the stories for the list's edition at the engine's now,
// leaving out stories sent in the list's earlier editions. It stores
// nothing. When fewer than the list's minimum of new stories remain it
// returns the edition and ErrNothingNew.
func (e *Engine) Build(list subscribers.List) (digest.Edition, error) {
	now := e.now()
	p := PolicyOf(list)
	arts, err := e.Store.Articles(now.Add(-p.Window))
	if err != nil {
		return digest.Edition{}, err
	}
	seen, err := e.Store.SentArticles(list.Name, now.Add(-SeenWindow))
	if err != nil {
		return digest.Edition{}, err
	}
	sel := digest.Select(arts, p, now, func(id string) bool { return seen[id] })
	slot := now.UTC().Truncate(time.Minute)
	ed := digest.Edition{
		ID: digest.EditionID(list.Name, slot), List: list.Name, Slot: slot,
		Stories: sel, Status: digest.EditionSending, Created: now,
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

// Start builds the list's edition now, records it and queues a delivery for
// every confirmed subscriber of the list. It returns the edition, whether
// it is new (false: an edition for the same slot already exists and is
// returned as it is), and ErrNothingNew when there is nothing to send.
func (e *Engine) Start(listName string) (digest.Edition, bool, error) {
	list, err := e.Store.GetList(listName)
	if err != nil {
		return digest.Edition{}, false, err
	}
	ed, err := e.Build(list)
	if err != nil {
		return ed, false, err
	}
	prep, err := e.Renderer.Prepare(e.View(list, ed))
	if err != nil {
		return ed, false, err
	}
	ed.Subject = prep.Subject
	created, err := e.Store.CreateEdition(ed)
	if err != nil {
		return ed, false, err
	}
	if !created {
		ed, err = e.Store.GetEdition(ed.ID)
		return ed, false, err
	}
	const page = 1000
	after := ""
	for {
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
	return ed, true, nil
}

// Result sums up one run of Deliver.
type Result struct {
	Edition    string
	Sent       int
	Failed     int
	Suppressed int
	Elapsed    time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("edition %s: %d sent, %d failed, %d suppressed in %s",
		r.Edition, r.Sent, r.Failed, r.Suppressed, r.Elapsed.Round(time.Millisecond))
}

type job struct {
	d   digest.Delivery
	sub subscribers.Subscriber
}

// Deliver sends every queued delivery of the edition and records each
// outcome in the ledger. It can be called again after a stop or a crash:
// only deliveries still queued are sent. When ctx is cancelled it stops
// taking new messages, lets those in flight finish and flushes the ledger.
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
	prep, err := e.Renderer.Prepare(e.View(list, ed))
	if err != nil {
		return res, err
	}
	pending, err := e.countPending(ed.ID)
	if err != nil {
		return res, err
	}
	if pending == 0 {
		res.Elapsed = time.Since(start)
		return res, nil
	}
	workers := max(e.Workers, 1)
	if workers > pending {
		workers = pending
	}

	jobs := make(chan job, workers*2)
	results := make(chan digest.Delivery, workers*2)
	var wg sync.WaitGroup
	var dialErr error
	var dialOnce sync.Once
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{e: e, list: list, ed: ed, prep: prep}
			defer w.close()
			for j := range jobs {
				if ctx.Err() != nil {
					continue // stopping: leave it queued
				}
				d, final, err := w.deliver(ctx, j)
				if err != nil { // no transport: leave the rest queued
					dialOnce.Do(func() { dialErr = err })
					for range jobs {
					}
					return
				}
				if final {
					results <- d
				}
			}
		}()
	}

	// Feeder: page through the queued deliveries without holding a
	// transaction while mail is sent.
	feedErr := make(chan error, 1)
	go func() {
		defer close(jobs)
		after := ""
		for {
			ds, err := e.Store.PendingDeliveries(ed.ID, after, 500)
			if err != nil {
				feedErr <- err
				return
			}
			if len(ds) == 0 {
				feedErr <- nil
				return
			}
			for _, d := range ds {
				after = d.Email
				sub, err := e.Store.GetSubscriber(d.Email)
				if err != nil {
					sub = subscribers.Subscriber{Email: d.Email}
				}
				select {
				case jobs <- job{d: d, sub: sub}:
				case <-ctx.Done():
					feedErr <- nil
					return
				}
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	// Ledger writer: one commit per batch.
	batchSize := e.BatchSize
	if batchSize <= 0 {
		batchSize = 256
	}
	var batch []digest.Delivery
	var recordErr error
	flush := func() {
		if len(batch) == 0 || recordErr != nil {
			return
		}
		if err := e.Store.RecordDeliveries(batch); err != nil {
			recordErr = err
		}
		batch = batch[:0]
	}
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	done := 0
	if e.Metrics != nil {
		e.Metrics.QueueDepth(pending)
		defer func() { e.Metrics.QueueDepth(done - pending); e.Metrics.EditionDone(time.Since(start)) }()
	}
loop:
	for {
		select {
		case d, ok := <-results:
			if !ok {
				break loop
			}
			switch d.Status {
			case digest.DeliverySent:
				res.Sent++
			case digest.DeliveryFailed:
				res.Failed++
			case digest.DeliverySuppressed:
				res.Suppressed++
			}
			batch = append(batch, d)
			if len(batch) >= batchSize {
				flush()
			}
			done++
			e.observe(d.Status)
			if e.Progress != nil {
				e.Progress(done, pending)
			}
		case <-ticker.C:
			flush()
		}
	}
	flush()
	res.Elapsed = time.Since(start)
	if err := <-feedErr; err != nil {
		return res, err
	}
	if recordErr != nil {
		return res, fmt.Errorf("recording deliveries: %w", recordErr)
	}
	if dialErr != nil {
		e.pause(ed.ID, dialErr.Error())
		return res, fmt.Errorf("edition %s paused: %w", ed.ID, dialErr)
	}
	if ctx.Err() != nil {
		e.pause(ed.ID, "stopped by signal")
		return res, fmt.Errorf("edition %s stopped: %w", ed.ID, ctx.Err())
	}
	return res, nil
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

func (e *Engine) countPending(id string) (int, error) {
	n, after := 0, ""
	for {
		ds, err := e.Store.PendingDeliveries(id, after, 5000)
		if err != nil || len(ds) == 0 {
			return n, err
		}
		n += len(ds)
		after = ds[len(ds)-1].Email
	}
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

// Compose builds the message for one recipient.
func (e *Engine) Compose(list subscribers.List, ed digest.Edition, prep *render.Prepared, sub subscribers.Subscriber) (*mail.Msg, error) {
	rc := e.Recipient(list, sub)
	html, text := prep.Personalize(rc)
	from, err := subscribers.ParseAddress(list.From)
	if err != nil {
		return nil, fmt.Errorf("list %s: from: %w", list.Name, err)
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	mailto := e.UnsubscribeMailto
	if mailto == "" {
		mailto = from.Address
	}
	var mailtoURL string
	if rc.UnsubscribeURL != "" {
		mailtoURL = mailto + "?subject=" + url.PathEscape("unsubscribe "+rc.UnsubscribeURL[strings.LastIndexByte(rc.UnsubscribeURL, '/')+1:])
	}
	return mailer.Build(mailer.Message{
		From:              list.From,
		ReplyTo:           list.ReplyTo,
		To:                sub.Email,
		ToName:            sub.Name,
		Subject:           prep.Subject,
		Date:              e.now(),
		MessageID:         mailer.NewMessageID(domain),
		ListID:            fmt.Sprintf("%s <%s.%s>", list.Title, list.Name, domain),
		UnsubscribeURL:    rc.UnsubscribeURL,
		UnsubscribeMailto: mailtoURL,
		FeedbackID:        fmt.Sprintf("%s:%s:newsdigest", ed.ID, list.Name),
		ReturnPath:        e.ReturnPath(list, ed, sub),
		Text:              text,
		HTML:              html,
	})
}

type worker struct {
	e    *Engine
	list subscribers.List
	ed   digest.Edition
	prep *render.Prepared
	tr   Transport
}

func (w *worker) close() {
	if w.tr != nil {
		w.tr.Close()
	}
}

// deliver sends one job, retrying temporary failures. final is false when
// the delivery stays queued (a stop came during a back-off). It returns an
// error only when no transport can be opened at all.
func (w *worker) deliver(ctx context.Context, j job) (d digest.Delivery, final bool, err error) {
	d, err = w.attempt(ctx, j)
	return d, err == nil && d.Status != digest.DeliveryQueued, err
}

func (w *worker) attempt(ctx context.Context, j job) (digest.Delivery, error) {
	e := w.e
	d := j.d
	d.At = e.now()
	if reason, ok, err := e.Store.Suppressed(d.Email); err == nil && ok {
		d.Status, d.Reply = digest.DeliverySuppressed, "suppressed: "+reason
		return d, nil
	}
	if j.sub.StatusOn(w.list.Name) != subscribers.Confirmed {
		d.Status, d.Reply = digest.DeliverySuppressed, fmt.Sprintf("not confirmed on %s (%s)", w.list.Name, orNone(string(j.sub.StatusOn(w.list.Name))))
		return d, nil
	}
	msg, err := e.Compose(w.list, w.ed, w.prep, j.sub)
	if err != nil {
		d.Status, d.Reply = digest.DeliveryFailed, err.Error()
		return d, nil
	}
	retries := e.MaxRetries
	if retries <= 0 {
		retries = 3
	}
	backoff := e.RetryBase
	if backoff <= 0 {
		backoff = time.Second
	}
	for attempt := 1; ; attempt++ {
		d.Attempts = attempt
		if w.tr == nil {
			tr, err := e.Dial(context.WithoutCancel(ctx))
			if err != nil {
				if attempt > retries {
					return d, err
				}
				if !sleep(ctx, jitter(backoff, attempt)) {
					return d, nil // stopping: still queued
				}
				continue
			}
			w.tr = tr
		}
		if e.Limiter != nil {
			if err := e.Limiter.Wait(context.WithoutCancel(ctx)); err != nil {
				return d, err
			}
		}
		err := w.tr.Send(context.WithoutCancel(ctx), msg)
		d.At = e.now()
		if err == nil {
			d.Status, d.MessageID, d.Reply = digest.DeliverySent, msg.GetMessageID(), ""
			return d, nil
		}
		var se *mailer.SendError
		if errors.As(err, &se) && se.Delivered {
			d.Status, d.MessageID, d.Reply = digest.DeliverySent, msg.GetMessageID(), ""
			return d, nil
		}
		d.Reply = err.Error()
		temporary := true
		if errors.As(err, &se) {
			temporary = se.Temporary
			if se.Code >= 500 && (strings.HasPrefix(se.Enhanced, "5.1.") || strings.Contains(se.Reply, " 5.1.")) {
				if err := e.Store.Suppress(d.Email, "hard bounce: "+se.Reply, d.At); err != nil {
					e.log().Error("suppressing", "email", d.Email, "err", err)
				}
			}
		}
		if !temporary || attempt > retries {
			d.Status = digest.DeliveryFailed
			return d, nil
		}
		if ctx.Err() != nil {
			return d, nil // stopping: still queued
		}
		// A dropped session is replaced before the retry.
		w.tr.Close()
		w.tr = nil
		if e.Metrics != nil {
			e.Metrics.Retry()
		}
		e.log().Warn("temporary failure, retrying", "email", d.Email, "attempt", attempt, "reply", d.Reply)
		if !sleep(ctx, jitter(backoff, attempt)) {
			return d, nil // still queued
		}
	}
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

func (t smtpTransport) Send(ctx context.Context, m *mail.Msg) error { return t.c.Send(ctx, m) }
func (t smtpTransport) Close() error                                { return t.c.Close() }

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
