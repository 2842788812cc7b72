package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"newsdigest/digest"
)

func runPreview(ctx context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "preview", "[--list L] [--as EMAIL] [--out FILE]",
		`Render the list's edition as it would be sent now, without sending or
recording anything. Prints each story with why it was picked; --out writes
the HTML email to FILE (open it in a browser); without --out the plain-text
part is printed. With --as EMAIL it is exactly that subscriber's copy: only
their topics, the week's stories if weekly, none they were already sent.
When 'newsdigest serve' holds the database, the daemon renders it (through
its admin API) and the output is the same.`)
	list := c.fs.String("list", "", "list (default: the only list)")
	as := c.fs.String("as", "", "render the copy of subscriber `EMAIL`")
	out := c.fs.String("out", "", "write the HTML to `FILE`")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	name, err := m.listName(*list)
	if err != nil {
		return err
	}
	ed, err := m.editor() // the daemon renders it when it holds the database
	if err != nil {
		return err
	}
	pv, err := ed.Preview(name, *as)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, pv.HTML, 0o644); err != nil {
			return err
		}
	}
	if m.g.json {
		return m.printJSON(map[string]any{
			"edition": pv.Edition.ID, "subject": pv.Subject, "skipped": pv.Empty, "reader": pv.Reader, "skip_reason": pv.Skip,
			"stories": pv.Edition.Stories.Picks(), "html_bytes": len(pv.HTML), "out": *out,
		})
	}
	if pv.Reader != "" {
		fmt.Fprintf(m.Stdout, "copy of %s\n\n", pv.Reader)
	}
	printPicks(m, pv.Edition)
	switch {
	case pv.Skip != "":
		fmt.Fprintf(m.Stdout, "\nThis reader would be SKIPPED now: %s.\n", pv.Skip)
	case pv.Empty:
		fmt.Fprintln(m.Stdout, "\nThis edition would be SKIPPED now: not enough new stories.")
	}
	fmt.Fprintf(m.Stdout, "\nsubject: %s\n", pv.Subject)
	if *out != "" {
		abs, _ := filepath.Abs(*out)
		fmt.Fprintf(m.Stdout, "HTML (%d bytes) written to %s\n", len(pv.HTML), abs)
	} else {
		fmt.Fprintf(m.Stdout, "\n%s", pv.Text)
	}
	return nil
}

func printPicks(m *Main, ed digest.Edition) {
	t := m.table("SECTION", "ID", "SCORE", "AGE", "TITLE", "WHY")
	for _, p := range ed.Stories.Picks() {
		t.row(p.Section, p.Article.ID, fmt.Sprintf("%.3f", p.Score), p.Age.Round(time.Minute), truncate(p.Article.Title, 50), p.Reason)
	}
	t.flush()
}
