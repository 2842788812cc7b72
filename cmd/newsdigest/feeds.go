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
// it). A failing feed is reported and the others go on; the error says
// how many failed.
func (m *Main) fetchFeeds(ctx context.Context, fs []digest.Feed) error {
	p := m.poller()
	failed := 0
	for _, f := range fs {
		out, err := p.FetchOne(ctx, f)
		if err != nil {
			return err
		}
		if out.Err != nil {
			failed++
			fmt.Fprintf(m.Stderr, "feed %s: %v (next try %s)\n", f.ID, out.Err, fmtTime(out.Feed.NextPoll))
			continue
		}
		res := out.Result
		if res.NotModified {
			fmt.Fprintf(m.Stdout, "feed %s: not modified\n", f.ID)
			continue
		}
		fmt.Fprintf(m.Stdout, "feed %s: %d items, %d new, %d updated", f.ID, len(res.Articles), out.Added, out.Merged)
		if len(res.Skipped) > 0 {
			fmt.Fprintf(m.Stdout, ", %d skipped", len(res.Skipped))
		}
		fmt.Fprintln(m.Stdout)
		for _, s := range res.Skipped {
			fmt.Fprintf(m.Stderr, "feed %s: item %d %q skipped: %s\n", f.ID, s.Index, truncate(s.Title, 60), s.Reason)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d feeds failed", failed, len(fs))
	}
	return nil
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
