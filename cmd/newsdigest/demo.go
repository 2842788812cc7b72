package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/capture"
	"newsdigest/digest/delivery"
	"newsdigest/digest/feed"
	"newsdigest/subscribers"
	"newsdigest/templates"
)

func runDemo(ctx context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "demo", "[--out DIR]",
		`Run the whole digest path on embedded sample data, touching nothing of
yours: a sample feed and popularity figures, five sample subscribers on a
sample list, top and recent stories selected, the digest rendered and sent
through the real SMTP path to an SMTP server started in this process, which
saves each message it receives as a .eml file. Also writes an HTML preview.`)
	out := c.fs.String("out", "", "write the demo database, inbox and preview to `DIR` (default: a new temporary folder)")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "newsdigest-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	inbox := filepath.Join(dir, "inbox")
	if err := os.RemoveAll(inbox); err != nil {
		return err
	}
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		return err
	}
	dbPath := filepath.Join(dir, "demo.db")
	if err := os.Remove(dbPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}

	srv, err := capture.Start("127.0.0.1:0", inbox)
	if err != nil {
		return fmt.Errorf("starting the demo SMTP server: %w", err)
	}
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(srv.Addr())
	port, _ := strconv.Atoi(portStr)

	// The demo's own configuration: nothing is read from the user's config
	// file or environment.
	m.cfg = DefaultConfig()
	m.cfg.DB = dbPath
	m.cfg.SMTP.Host, m.cfg.SMTP.Port, m.cfg.SMTP.TLS, m.cfg.SMTP.Workers = host, port, "none", 2
	m.cfg.Site = SiteConfig{
		Name: "The Harbour Gazette", URL: "https://harbourgazette.example", Lang: "en",
		PostalAddress: "The Harbour Gazette, 1 Quay Street, Port Example, EX1 2AB",
		Footer:        "You receive this because you subscribed to The Daily at harbourgazette.example.",
	}
	m.log = newQuietLogger(m.Stderr)
	if m.store, err = boltstore.Open(dbPath, boltstore.Options{Timeout: time.Second}); err != nil {
		return err
	}

	list := subscribers.List{
		Name: "daily", Title: "The Daily", From: "The Harbour Gazette <digest@harbourgazette.example>",
		ReplyTo: "newsroom@harbourgazette.example", TopCount: 5, RecentCount: 5, Window: 48 * time.Hour,
		Created: start,
	}
	if err := m.store.PutList(list); err != nil {
		return err
	}

	// Articles: the sample feed, moved in time so that its newest story was
	// published an hour ago, then the CMS's popularity figures.
	feedXML, err := templates.FS.ReadFile("demo/feed.xml")
	if err != nil {
		return err
	}
	// Parse as of the sample's own date, then move it to now.
	res, err := feed.Parse(bytes.NewReader(feedXML), "https://harbourgazette.example/", sampleDate)
	if err != nil {
		return fmt.Errorf("sample feed: %w", err)
	}
	shiftToNow(res.Articles, start.Add(-time.Hour))
	for i := range res.Articles {
		res.Articles[i].Source = "demo-feed"
	}
	if _, _, err := m.store.UpsertArticles(res.Articles); err != nil {
		return err
	}
	popJSON, err := templates.FS.ReadFile("demo/articles.json")
	if err != nil {
		return err
	}
	pop, bad, err := feed.ReadArticlesJSON(bytes.NewReader(popJSON), start)
	if err != nil || len(bad) > 0 {
		return fmt.Errorf("sample popularity figures: %v %v", err, bad)
	}
	views := make(map[string]int64, len(pop))
	for _, a := range pop {
		views[a.GUID] = a.Views
	}
	if _, missing, err := m.store.SetViews(views); err != nil || len(missing) > 0 {
		return fmt.Errorf("sample popularity figures: %v (unknown: %v)", err, missing)
	}

	// Subscribers, through the same importer as 'subscribers import'.
	subsCSV, err := templates.FS.ReadFile("demo/subscribers.csv")
	if err != nil {
		return err
	}
	im, err := subscribers.NewCSVImporter(bytes.NewReader(subsCSV), subscribers.ImportOptions{
		Lists: []string{list.Name}, Status: subscribers.Confirmed, Source: "demo", Now: start,
	})
	if err != nil {
		return err
	}
	var subs []subscribers.Row
	for {
		row, err := im.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if row.Err != nil {
			return fmt.Errorf("sample subscribers line %d: %w", row.Line, row.Err)
		}
		if sub := &row.Subscriber; sub.Frequency == subscribers.Weekly {
			// The demo sends once, now: its weekly readers' day is today
			// (where they live), so that every sample reader gets a copy.
			loc, err := time.LoadLocation(sub.Timezone)
			if err != nil {
				loc = time.UTC
			}
			if sub.Attrs == nil {
				sub.Attrs = map[string]string{}
			}
			sub.Attrs[delivery.WeekdayAttr] = start.In(loc).Weekday().String()
		}
		subs = append(subs, row)
	}
	if _, _, _, err := m.store.UpsertSubscribers(subs, false); err != nil {
		return err
	}

	e, err := m.engine("")
	if err != nil {
		return err
	}
	pv, err := e.Preview(list.Name, "")
	if err != nil {
		return err
	}
	previewPath := filepath.Join(dir, "preview.html")
	if err := os.WriteFile(previewPath, pv.HTML, 0o644); err != nil {
		return err
	}
	ed, _, err := e.Start(list.Name)
	if err != nil {
		return err
	}
	res2, err := e.Deliver(ctx, ed.ID)
	if err != nil {
		return err
	}
	// The SMTP server has answered 250 for each message: by then it has
	// saved it.
	if m.g.json {
		return m.printJSON(map[string]any{
			"edition": ed.ID, "sent": res2.Sent, "failed": res2.Failed, "received": srv.Count(),
			"inbox": inbox, "preview": previewPath, "db": dbPath, "stories": ed.Stories.Len(),
		})
	}
	fmt.Fprintf(m.Stdout, "newsdigest demo: %d articles from the sample feed, %d subscribers on list %q\n\n", len(res.Articles), len(subs), list.Name)
	printPicks(m, ed)
	fmt.Fprintf(m.Stdout, "\nSent edition %s (%q) over SMTP to %s: %d sent, %d failed; the server received %d messages.\n",
		ed.ID, ed.Subject, srv.Addr(), res2.Sent, res2.Failed, srv.Count())
	fmt.Fprintf(m.Stdout, "  .eml files:   %s\n  HTML preview: %s\n  database:     %s\n", inbox, previewPath, dbPath)
	fmt.Fprintf(m.Stdout, "Done in %s.\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// sampleDate is the moment the sample feed was written for.
var sampleDate = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

// shiftToNow moves every article's publication time by the same amount so
// that the newest one is at newest.
func shiftToNow(arts []digest.Article, newest time.Time) {
	var max time.Time
	for _, a := range arts {
		if a.Published.After(max) {
			max = a.Published
		}
	}
	d := newest.Sub(max)
	for i := range arts {
		arts[i].Published = arts[i].Published.Add(d)
	}
}
