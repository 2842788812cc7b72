package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/adminapi"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/feed"
	"newsdigest/digest/poller"
)

func runFeeds(ctx context.Context, m *Main, args []string) error {
	return subcommand(ctx, m, "feeds", args, map[string]runner{
		"add": feedsAdd, "list": feedsList, "remove": feedsRemove, "fetch": feedsFetch,
	})
}

// feedLocation normalizes a feed argument: an http(s) URL as given, a
// file as an absolute path.
func feedLocation(arg string) (string, error) {
	if u, err := url.Parse(arg); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if u.Host == "" {
			return "", fmt.Errorf("feed %q: URL has no host", arg)
		}
		return arg, nil
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("feed %q is neither an http(s) URL nor a readable file: %w", arg, err)
	}
	return abs, nil
}

func feedsAdd(ctx context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "feeds add", "URL|FILE [--interval DUR] [--no-fetch]", "Add a feed (RSS 2.0, Atom or JSON Feed) and fetch it once; serve then polls it every feeds.interval, or DUR.")
	noFetch := c.fs.Bool("no-fetch", false, "do not fetch it now")
	interval := c.fs.Duration("interval", 0, "poll this feed every DUR (at least 1m) instead of feeds.interval")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	loc, err := feedLocation(pos[0])
	if err != nil {
		return err
	}
	if *interval != 0 && *interval < minFeedInterval {
		return usageError{fmt.Sprintf("--interval %s: want at least %s", *interval, minFeedInterval)}
	}
	m.create = true
	if err := m.openAdmin(); err != nil {
		return err
	}
	if _, err := m.admin.GetFeed(loc); err == nil {
		return fmt.Errorf("feed %s is already added", loc)
	}
	f := digest.Feed{ID: digest.FeedID(loc), URL: loc, Added: time.Now(), Interval: *interval}
	if err := m.admin.PutFeed(f); err != nil {
		return err
	}
	if m.g.json {
		out := map[string]any{"feed": f.ID, "url": loc, "added": true}
		var err error
		if !*noFetch {
			var rep fetchReport
			rep, err = m.fetchFeedsReport(ctx, []digest.Feed{f})
			out["fetch"] = rep.Feeds[0]
		}
		if jerr := m.printJSON(out); jerr != nil {
			return jerr
		}
		return err
	}
	fmt.Fprintf(m.Stdout, "feed %s added: %s\n", f.ID, loc)
	if *noFetch {
		return nil
	}
	return m.fetchFeeds(ctx, []digest.Feed{f})
}

func feedsList(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "feeds list", "", "Show every feed with its last fetch, new items, next poll and last error.")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	fs, err := m.admin.Feeds()
	if err != nil {
		return err
	}
	if m.g.json {
		if fs == nil {
			fs = []digest.Feed{}
		}
		return m.printJSON(fs)
	}
	t := m.table("ID", "TITLE", "URL", "LAST FETCH", "NEW", "NEXT POLL", "LAST ERROR")
	for _, f := range fs {
		next := fmtTime(f.NextPoll)
		if f.NextPoll.IsZero() {
			next = "now"
		}
		lastErr := orDash(f.LastError)
		if f.Failures > 1 {
			lastErr = fmt.Sprintf("(%d failures in a row) %s", f.Failures, lastErr)
		}
		t.row(f.ID, truncate(orDash(f.Title), 30), truncate(f.URL, 50), fmtTime(f.LastFetch), f.NewItems, next, truncate(lastErr, 60))
	}
	return t.flush()
}

func feedsRemove(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "feeds remove", "FEED", "Remove a feed (by ID or URL). Its articles stay.")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	arg := pos[0]
	if loc, err := feedLocation(arg); err == nil {
		if _, err := m.admin.GetFeed(loc); err == nil {
			arg = loc
		}
	}
	if err := m.admin.DeleteFeed(arg); err != nil {
		return fmt.Errorf("feed %s: %w", pos[0], err)
	}
	fmt.Fprintf(m.Stdout, "feed %s removed\n", pos[0])
	return nil
}

func feedsFetch(ctx context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "feeds fetch", "[FEED]", "Fetch one feed (by ID or URL) or all of them now.")
	pos, err := c.parseArgs(args, m.Stdout, 0, 1)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	var fs []digest.Feed
	if len(pos) == 1 {
		f, err := m.admin.GetFeed(pos[0])
		if errors.Is(err, boltstore.ErrNotFound) {
			if loc, lerr := feedLocation(pos[0]); lerr == nil {
				f, err = m.admin.GetFeed(loc)
			}
		}
		if err != nil {
			return fmt.Errorf("feed %s: %w", pos[0], err)
		}
		fs = []digest.Feed{f}
	} else if fs, err = m.admin.Feeds(); err != nil {
		return err
	}
	if len(fs) == 0 {
		return errors.New("no feeds: add one with 'newsdigest feeds add URL|FILE'")
	}
	return m.fetchFeeds(ctx, fs)
}

// poller is the feed poller on the admin service (the file, or the
// daemon's API), with the [feeds] settings: what `feeds fetch` and the
// daemon share.
func (m *Main) poller() *poller.Poller {
	return &poller.Poller{
		Store:      m.admin,
		Fetcher:    m.feedFetcher(),
		Interval:   m.cfg.Feeds.Interval.Duration,
		MaxBackoff: m.cfg.Feeds.MaxBackoff.Duration,
	}
}

func (m *Main) feedFetcher() *feed.Fetcher {
	timeout := m.cfg.Feeds.Timeout.Duration
	if timeout <= 0 { // never without a timeout
		timeout = feed.DefaultTimeout
	}
	return &feed.Fetcher{
		Client:   &http.Client{Timeout: timeout},
		MaxBytes: int64(m.cfg.Feeds.MaxBytes),
	}
}

// fetchFeeds fetches each feed now, stores its articles and its status
// (the poller's FetchOne, so the next poll of the daemon follows from
// it), and prints what each fetch did (with --json, a fetchReport). A
// failing feed is reported and the others go on; the error says how many
// failed.
func (m *Main) fetchFeeds(ctx context.Context, fs []digest.Feed) error {
	rep, err := m.fetchFeedsReport(ctx, fs)
	if m.g.json {
		if rep.Feeds == nil {
			rep.Feeds = []feedFetch{}
		}
		if jerr := m.printJSON(rep); jerr != nil {
			return jerr
		}
		return err
	}
	for _, r := range rep.Feeds {
		switch {
		case r.Error != "":
			fmt.Fprintf(m.Stderr, "feed %s: %s (next try %s)\n", r.Feed, r.Error, fmtTime(r.NextPoll))
			continue
		case r.NotModified:
			fmt.Fprintf(m.Stdout, "feed %s: not modified\n", r.Feed)
			continue
		}
		fmt.Fprintf(m.Stdout, "feed %s: %d items, %d new, %d already known", r.Feed, r.Items, r.New, r.Known)
		if len(r.SkippedItems) > 0 {
			fmt.Fprintf(m.Stdout, ", %d skipped", len(r.SkippedItems))
		}
		fmt.Fprintln(m.Stdout)
		for _, s := range r.SkippedItems {
			fmt.Fprintf(m.Stderr, "feed %s: item %d %q skipped: %s\n", r.Feed, s.Index, truncate(s.Title, 60), s.Reason)
		}
	}
	return err
}

// fetchReport is what 'feeds fetch --json' prints: each feed's fetch and
// how many failed.
type fetchReport struct {
	Feeds  []feedFetch `json:"feeds"`
	Failed int         `json:"failed"`
}

// feedFetch is one feed's fetch: the items it read, those new to the
// store and those already known (merged into the stored article, changed
// or not), the items skipped with why, or the error and the next try.
type feedFetch struct {
	Feed         string        `json:"feed"`
	URL          string        `json:"url"`
	NotModified  bool          `json:"not_modified"`
	Items        int           `json:"items"`
	New          int           `json:"new"`
	Known        int           `json:"known"`
	Skipped      int           `json:"skipped"`
	SkippedItems []skippedItem `json:"skipped_items"`
	Error        string        `json:"error,omitempty"`
	NextPoll     time.Time     `json:"next_poll"`
}

type skippedItem struct {
	Index  int    `json:"index"`
	Title  string `json:"title"`
	Reason string `json:"reason"`
}

// fetchFeedsReport fetches each feed as fetchFeeds says and reports it.
func (m *Main) fetchFeedsReport(ctx context.Context, fs []digest.Feed) (fetchReport, error) {
	p := m.poller()
	var rep fetchReport
	for _, f := range fs {
		out, err := p.FetchOne(ctx, f)
		if err != nil {
			return rep, err
		}
		r := feedFetch{Feed: f.ID, URL: f.URL, NextPoll: out.Feed.NextPoll, SkippedItems: []skippedItem{}}
		if out.Err != nil {
			rep.Failed++
			r.Error = out.Err.Error()
			rep.Feeds = append(rep.Feeds, r)
			continue
		}
		res := out.Result
		r.NotModified = res.NotModified
		if !res.NotModified {
			r.Items, r.New, r.Known, r.Skipped = len(res.Articles), out.Added, out.Merged, len(res.Skipped)
			for _, s := range res.Skipped {
				r.SkippedItems = append(r.SkippedItems, skippedItem{Index: s.Index, Title: s.Title, Reason: s.Reason})
			}
		}
		rep.Feeds = append(rep.Feeds, r)
	}
	if rep.Failed > 0 {
		return rep, fmt.Errorf("%d of %d feeds failed", rep.Failed, len(fs))
	}
	return rep, nil
}

// daemonPoller is the daemon's feed poller: each feed on its own
// interval, straight on the store the daemon holds.
func (m *Main) daemonPoller(o *ops) *poller.Poller {
	p := m.poller()
	p.Store = m.store
	p.Log = m.log.With("component", "poller")
	if o != nil && o.met != nil {
		p.Observe = o.met.FeedFetch
	}
	return p
}

// wakePoller is the admin service of the daemon: a feed added or changed
// through it is looked at by the poller at once.
type wakePoller struct {
	adminapi.Service
	p *poller.Poller
}

func (w wakePoller) PutFeed(f digest.Feed) error {
	err := w.Service.PutFeed(f)
	if err == nil && w.p != nil {
		w.p.Wake()
	}
	return err
}
