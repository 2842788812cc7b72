package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/adminapi"
	"newsdigest/digest/feed"
)

func runArticles(ctx context.Context, m *Main, args []string) error {
	return subcommand(ctx, m, "articles", args, map[string]runner{
		"import": articlesImport, "list": articlesList,
		"pin": articlesEdit("pin"), "unpin": articlesEdit("unpin"), "boost": articlesEdit("boost"),
		"exclude": articlesEdit("exclude"), "include": articlesEdit("include"),
	})
}

func articlesImport(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "articles import", "FILE.json|FILE.csv",
		"Import articles from a CMS export: a JSON array or CSV with columns guid, link, title, summary, image, author, categories, published, views. An entry with only guid and views updates popularity. Bad rows are reported with their line; the rest are imported.")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	m.create = true
	if err := m.openAdmin(); err != nil {
		return err
	}
	return m.importArticles(pos[0])
}

func (m *Main) importArticles(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var arts []digest.Article
	var bad []feed.RowError
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		arts, bad, err = feed.ReadArticlesCSV(f, time.Now())
	} else {
		arts, bad, err = feed.ReadArticlesJSON(f, time.Now())
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, b := range bad {
		fmt.Fprintf(m.Stderr, "%s:%d: %s\n", path, b.Line, b.Reason)
	}
	// Popularity updates (guid and views only) change known articles;
	// the rest are articles to add or merge.
	var full []digest.Article
	views := map[string]int64{}
	for _, a := range arts {
		if feed.IsPopularityUpdate(a) {
			views[a.GUID] = a.Views
			continue
		}
		if a.Source == "" {
			a.Source = "import"
		}
		full = append(full, a)
	}
	added, merged, err := m.admin.UpsertArticles(full)
	if err != nil {
		return err
	}
	viewed, missing, err := m.admin.SetViews(views)
	if err != nil {
		return err
	}
	for _, g := range missing {
		fmt.Fprintf(m.Stderr, "%s: views for unknown article %q ignored\n", path, g)
	}
	if m.g.json {
		return m.printJSON(map[string]any{"added": added, "updated": merged, "views_updated": viewed, "unknown": len(missing), "rejected": len(bad)})
	}
	fmt.Fprintf(m.Stdout, "articles: %d added, %d updated, views of %d updated, %d unknown, %d rejected\n", added, merged, viewed, len(missing), len(bad))
	return nil
}

func articlesList(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "articles list", "[--since DUR] [--limit N]", "List articles, newest first.")
	since := c.fs.Duration("since", 0, "only articles published within DUR (e.g. 48h)")
	limit := c.fs.Int("limit", 50, "at most N articles (0 = all)")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	var from time.Time
	if *since > 0 {
		from = time.Now().Add(-*since)
	}
	arts, err := m.admin.Articles(from)
	if err != nil {
		return err
	}
	if *limit > 0 && len(arts) > *limit {
		arts = arts[:*limit]
	}
	if m.g.json {
		if arts == nil {
			arts = []digest.Article{}
		}
		return m.printJSON(arts)
	}
	t := m.table("ID", "PUBLISHED", "VIEWS", "FLAGS", "TITLE")
	for _, a := range arts {
		var flags []string
		if a.Pinned {
			flags = append(flags, "pinned")
		}
		if a.Boost > 0 && a.Boost != 1 {
			flags = append(flags, "boost×"+strconv.FormatFloat(a.Boost, 'g', -1, 64))
		}
		if a.Excluded {
			flags = append(flags, "excluded")
		}
		t.row(a.ID, fmtTime(a.Published), a.Views, orDash(strings.Join(flags, ",")), truncate(a.Title, 70))
	}
	return t.flush()
}

func articlesEdit(verb string) runner {
	return func(_ context.Context, m *Main, args []string) error {
		usage, help := "ARTICLE", ""
		switch verb {
		case "pin":
			help = "Pin an article (by ID or a unique ID prefix) to the top of the next editions."
		case "unpin":
			help = "Undo pin."
		case "boost":
			usage, help = "ARTICLE [FACTOR]", "Multiply an article's score by FACTOR (default 2; 1 removes the boost)."
		case "exclude":
			help = "Keep an article out of every edition."
		case "include":
			help = "Undo exclude."
		}
		c := newCommand(&m.g, "articles "+verb, usage, help)
		pos, err := c.parse(args, m.Stdout)
		if err != nil {
			return err
		}
		maxArgs := 1
		if verb == "boost" {
			maxArgs = 2
		}
		if err := c.args(pos, 1, maxArgs); err != nil {
			return err
		}
		factor := 2.0
		if len(pos) == 2 {
			if factor, err = strconv.ParseFloat(pos[1], 64); err != nil || factor <= 0 {
				return usageError{fmt.Sprintf("boost factor %q: want a positive number", pos[1])}
			}
		}
		if err := m.openAdmin(); err != nil {
			return err
		}
		a, err := m.admin.GetArticle(pos[0])
		if err != nil {
			return fmt.Errorf("article %s: %w", pos[0], err)
		}
		yes, no := true, false
		var edit adminapi.ArticleEdit
		switch verb {
		case "pin":
			edit.Pinned = &yes
		case "unpin":
			edit.Pinned = &no
		case "boost":
			edit.Boost = &factor
		case "exclude":
			edit.Excluded = &yes
		case "include":
			edit.Excluded = &no
		}
		a, err = m.admin.EditArticle(a.ID, edit)
		if err != nil {
			return err
		}
		if m.g.json {
			return m.printJSON(a)
		}
		fmt.Fprintf(m.Stdout, "%s: %s (%s)\n", verb, a.ID, truncate(a.Title, 60))
		return nil
	}
}
