// Package poller fetches feeds and stores what they bring: each feed on its
// own interval, with a conditional GET, the fetcher's timeout and body
// limit, and exponential back-off after failures. The daemon runs Poller.Run
// as one of its components; `newsdigest feeds fetch` calls Poller.FetchOne
// for each feed, so that both go through the same code.
//
// A feed's schedule lives in the feed itself (digest.Feed.NextPoll,
// Failures, LastError…), in the store: a restart continues where the
// daemon was, and `feeds list` shows it.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/feed"
)

// Defaults of a Poller's zero fields.
const (
	DefaultInterval    = 15 * time.Minute
	DefaultMaxBackoff  = 6 * time.Hour
	DefaultConcurrency = 4
	// MaxSleep bounds how long Run waits between looks at the store, so
	// that a feed added or changed while it sleeps is polled soon.
	MaxSleep = time.Minute
)

// Store is what the poller needs of storage. boltstore.Store and the admin
// API's Service (direct or through the daemon) implement it.
type Store interface {
	Feeds() ([]digest.Feed, error)
	GetFeed(idOrURL string) (digest.Feed, error)
	PutFeed(f digest.Feed) error
	UpsertArticles(as []digest.Article) (added, merged int, err error)
}

// Fetcher reads one feed; *feed.Fetcher implements it.
type Fetcher interface {
	Fetch(ctx context.Context, f digest.Feed) (feed.Result, error)
}

// ErrGone is returned by FetchOne when the feed was removed while it was
// being fetched: nothing is stored.
var ErrGone = errors.New("feed removed while it was fetched")

// Poller fetches feeds when they are due. Fill the fields, then call Run
// or FetchOne. A Poller is safe for concurrent use.
type Poller struct {
	Store   Store
	Fetcher Fetcher      // nil: a zero *feed.Fetcher
	Clock   digest.Clock // nil: the system clock
	Log     *slog.Logger

	Interval    time.Duration // of feeds whose own Interval is 0; default DefaultInterval
	MaxBackoff  time.Duration // longest wait after failures; default DefaultMaxBackoff (at least the interval)
	Concurrency int           // feeds fetched at once by PollDue; default DefaultConcurrency

	// After waits: Run calls it between rounds. nil means time.After.
	// Tests give a fake that they release themselves.
	After func(d time.Duration) <-chan time.Time
	// Observe, if set, is told of every fetch and its error (nil on
	// success, 304 included), e.g. for metrics.
	Observe func(err error)

	defaultFetcher feed.Fetcher
	mu             sync.Mutex
	inFlight       map[string]bool
	wake           chan struct{}
}

// Outcome is what one fetch did.
type Outcome struct {
	Feed   digest.Feed // as stored after the fetch
	Result feed.Result // what the fetch read (Skipped and Notes included)
	Added  int         // articles new to the store
	Merged int         // articles already known, updated
	Err    error       // the fetch's error, also stored in Feed.LastError; nil on success
}

func (p *Poller) now() time.Time {
	if p.Clock == nil {
		return time.Now()
	}
	return p.Clock.Now()
}

func (p *Poller) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

func (p *Poller) fetcher() Fetcher {
	if p.Fetcher != nil {
		return p.Fetcher
	}
	return &p.defaultFetcher
}

// IntervalOf is how often f is polled when it works.
func (p *Poller) IntervalOf(f digest.Feed) time.Duration {
	if f.Interval > 0 {
		return f.Interval
	}
	if p.Interval > 0 {
		return p.Interval
	}
	return DefaultInterval
}

// Delay is how long after a fetch of f the next one is due, given its
// consecutive failures: the interval when it worked, else the interval
// doubled for each failure (2×, 4×, 8×…), at most MaxBackoff.
func (p *Poller) Delay(f digest.Feed) time.Duration {
	iv := p.IntervalOf(f)
	if f.Failures <= 0 {
		return iv
	}
	limit := p.MaxBackoff
	if limit <= 0 {
		limit = DefaultMaxBackoff
	}
	limit = max(limit, iv)
	d := iv
	for i := 0; i < f.Failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// FetchOne fetches f now, stores its new and changed articles, and stores
// the feed's status: LastFetch, LastError, Failures, NewItems, the
// validators for the next conditional GET, and NextPoll. A failing fetch
// is not an error of FetchOne: it is in Outcome.Err (and the feed's
// LastError). The error is for the store, or ErrGone when the feed was
// removed meanwhile.
func (p *Poller) FetchOne(ctx context.Context, f digest.Feed) (Outcome, error) {
	res, ferr := p.fetcher().Fetch(ctx, f)
	if p.Observe != nil {
		p.Observe(ferr)
	}
	out := Outcome{Result: res, Err: ferr}
	if ferr == nil && !res.NotModified {
		for i := range res.Articles {
			res.Articles[i].Source = f.ID
		}
		added, merged, err := p.Store.UpsertArticles(res.Articles)
		if err != nil {
			return out, fmt.Errorf("poller: feed %s: storing %d articles: %w", f.ID, len(res.Articles), err)
		}
		out.Added, out.Merged = added, merged
	}

	// Write the status onto the stored copy, which an admin may have
	// changed (interval, title) or removed while we fetched. Errors of
	// the admin client wrap boltstore.ErrNotFound too.
	cur, err := p.Store.GetFeed(f.ID)
	if err != nil {
		if errors.Is(err, boltstore.ErrNotFound) {
			return out, fmt.Errorf("poller: feed %s: %w", f.ID, ErrGone)
		}
		return out, err
	}
	now := p.now()
	cur.LastFetch = now
	switch {
	case ferr != nil:
		cur.LastError, cur.Failures = ferr.Error(), cur.Failures+1
	case res.NotModified:
		cur.LastError, cur.Failures, cur.NewItems = "", 0, 0
		cur.ETag, cur.LastModified = res.ETag, res.LastModified
	default:
		cur.LastError, cur.Failures, cur.NewItems = "", 0, out.Added
		cur.ETag, cur.LastModified = res.ETag, res.LastModified
		if res.Title != "" {
			cur.Title = res.Title
		}
	}
	cur.NextPoll = now.Add(p.Delay(cur))
	if err := p.Store.PutFeed(cur); err != nil {
		return out, err
	}
	out.Feed = cur
	return out, nil
}

// PollDue fetches every feed whose NextPoll has come (a feed never
// polled is due at once), a few at a time, and returns when the next one
// is due (zero when there are no feeds). A failing feed is logged and the
// others go on; the error is for the store.
func (p *Poller) PollDue(ctx context.Context) (next time.Time, err error) {
	fs, err := p.Store.Feeds()
	if err != nil {
		return time.Time{}, err
	}
	now := p.now()
	var due []digest.Feed
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, f := range fs {
		if f.NextPoll.After(now) {
			consider(f.NextPoll)
			continue
		}
		due = append(due, f)
	}
	workers := p.Concurrency
	if workers <= 0 {
		workers = DefaultConcurrency
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, f := range due {
		if ctx.Err() != nil {
			break
		}
		if !p.claim(f.ID) {
			continue // a FetchOne from elsewhere is on it
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { p.release(f.ID); <-sem; wg.Done() }()
			out, err := p.FetchOne(ctx, f)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrGone):
				return
			case err != nil:
				errs = append(errs, err)
				p.log().Error("feed poll: store", "feed", f.ID, "err", err)
				return
			case out.Err != nil:
				p.log().Warn("feed poll failed", "feed", f.ID, "url", f.URL, "failures", out.Feed.Failures,
					"next_poll", out.Feed.NextPoll, "err", out.Err)
			default:
				p.log().Info("feed polled", "feed", f.ID, "not_modified", out.Result.NotModified,
					"items", len(out.Result.Articles), "new", out.Added, "skipped", len(out.Result.Skipped))
			}
			consider(out.Feed.NextPoll)
		}()
	}
	wg.Wait()
	return next, errors.Join(errs...)
}

func (p *Poller) claim(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight == nil {
		p.inFlight = make(map[string]bool)
	}
	if p.inFlight[id] {
		return false
	}
	p.inFlight[id] = true
	return true
}

func (p *Poller) release(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inFlight, id)
}

func (p *Poller) wakeChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wake == nil {
		p.wake = make(chan struct{}, 1)
	}
	return p.wake
}

// Wake makes a sleeping Run look at the feeds now, e.g. after one was
// added or changed. It never blocks.
func (p *Poller) Wake() {
	select {
	case p.wakeChan() <- struct{}{}:
	default:
	}
}

// Run polls due feeds until ctx ends, sleeping until the next one is due
// (at most MaxSleep, so that new feeds are picked up; Wake cuts the
// sleep short). A fetch in flight
// when ctx ends is cancelled; Run then returns nil. Store errors are
// logged and retried at the next round.
func (p *Poller) Run(ctx context.Context) error {
	after := p.After
	if after == nil {
		after = time.After
	}
	for {
		next, err := p.PollDue(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log().Error("feed poll round", "err", err)
		}
		wait := MaxSleep
		if !next.IsZero() {
			// At least a second: a due feed that another fetch holds
			// must not make this loop spin.
			wait = min(max(next.Sub(p.now()), time.Second), MaxSleep)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-after(wait):
		case <-p.wakeChan():
		}
	}
}
