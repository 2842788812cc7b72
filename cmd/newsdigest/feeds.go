package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/feed"
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
	c := newCommand(&m.g, "feeds add", "URL|FILE [--no-fetch]", "Add a feed (RSS 2.0, Atom or JSON Feed) and fetch it once.")
	noFetch := c.fs.Bool("no-fetch", false, "do not fetch it now")
	pos, err := c.parse(args, m.Stdout)
	if err != nil {
		return err
	}
	if err := c.args(pos, 1, 1); err != nil {
		return err
	}
	loc, err := feedLocation(pos[0])
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	if _, err := m.admin.GetFeed(loc); err == nil {
		return fmt.Errorf("feed %s is already added", loc)
	}
	f := digest.Feed{ID: digest.FeedID(loc), URL: loc, Added: time.Now()}
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
	c := newCommand(&m.g, "feeds list", "", "Show every feed with its last fetch and error.")
	pos, err := c.parse(args, m.Stdout)
	if err != nil {
		return err
	}
	if err := c.args(pos, 0, 0); err != nil {
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
	t := m.table("ID", "TITLE", "URL", "LAST FETCH", "NEW", "LAST ERROR")
	for _, f := range fs {
		t.row(f.ID, truncate(orDash(f.Title), 30), truncate(f.URL, 50), fmtTime(f.LastFetch), f.NewItems, truncate(orDash(f.LastError), 50))
	}
	return t.flush()
}

func feedsRemove(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "feeds remove", "FEED", "Remove a feed (by ID or URL). Its articles stay.")
	pos, err := c.parse(args, m.Stdout)
	if err != nil {
		return err
	}
	if err := c.args(pos, 1, 1); err != nil {
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
	pos, err := c.parse(args, m.Stdout)
	if err != nil {
		return err
	}
	if err := c.args(pos, 0, 1); err != nil {
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

// fetchFeeds fetches each feed, stores its articles and its status. A
// failing feed is reported and the others go on; the error says how many
// failed.
func (m *Main) fetchFeeds(ctx context.Context, fs []digest.Feed) error {
	fetcher := &feed.Fetcher{}
	failed := 0
	for _, f := range fs {
		res, err := fetcher.Fetch(ctx, f)
		f.LastFetch = time.Now()
		if err != nil {
			failed++
			f.LastError, f.Failures = err.Error(), f.Failures+1
			fmt.Fprintf(m.Stderr, "feed %s: %v\n", f.ID, err)
			if perr := m.admin.PutFeed(f); perr != nil {
				return perr
			}
			continue
		}
		f.LastError, f.Failures = "", 0
		if res.NotModified {
			f.NewItems = 0
			fmt.Fprintf(m.Stdout, "feed %s: not modified\n", f.ID)
		} else {
			for i := range res.Articles {
				res.Articles[i].Source = f.ID
			}
			added, merged, err := m.admin.UpsertArticles(res.Articles)
			if err != nil {
				return err
			}
			f.NewItems = added
			if res.Title != "" {
				f.Title = res.Title
			}
			f.ETag, f.LastModified = res.ETag, res.LastModified
			fmt.Fprintf(m.Stdout, "feed %s: %d items, %d new, %d updated", f.ID, len(res.Articles), added, merged)
			if len(res.Skipped) > 0 {
				fmt.Fprintf(m.Stdout, ", %d skipped", len(res.Skipped))
			}
			fmt.Fprintln(m.Stdout)
			for _, s := range res.Skipped {
				fmt.Fprintf(m.Stderr, "feed %s: item %d %q skipped: %s\n", f.ID, s.Index, truncate(s.Title, 60), s.Reason)
			}
		}
		if err := m.admin.PutFeed(f); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d feeds failed", failed, len(fs))
	}
	return nil
}
