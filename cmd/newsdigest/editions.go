package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"newsdigest/digest"
	"newsdigest/digest/adminapi"
)

func runEditions(ctx context.Context, m *Main, args []string) error {
	return subcommand(ctx, m, "editions", args, map[string]runner{
		"list": editionsList, "show": editionsShow, "resume": editionsResume, "pause": editionsPause,
	})
}

func editionsList(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "editions list", "[--list L]", "List editions, newest first, with their delivery counts.")
	list := c.fs.String("list", "", "only editions of list L")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	if err := m.open(); err != nil {
		return err
	}
	eds, err := m.store.Editions(*list)
	if err != nil {
		return err
	}
	if m.g.json {
		if eds == nil {
			eds = []digest.Edition{}
		}
		return m.printJSON(eds)
	}
	t := m.table("EDITION", "STATUS", "CREATED", "STORIES", "SENT", "FAILED", "SUPPRESSED", "SUBJECT")
	for _, e := range eds {
		t.row(e.ID, e.Status, fmtTime(e.Created), e.Stories.Len(), e.Sent, e.Failed, e.Suppressed, truncate(e.Subject, 50))
	}
	return t.flush()
}

func editionsShow(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "editions show", "EDITION", "Show an edition: its stories, counts (sent, failed, suppressed, clicks per story, unsubscribes) and failed deliveries.")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	if err := m.open(); err != nil {
		return err
	}
	ed, err := m.store.GetEdition(pos[0])
	if err != nil {
		return fmt.Errorf("edition %s: %w", pos[0], err)
	}
	ds, err := m.store.Deliveries(ed.ID)
	if err != nil {
		return err
	}
	var failures []digest.Delivery
	queued := 0
	for _, d := range ds {
		switch d.Status {
		case digest.DeliveryFailed, digest.DeliverySuppressed:
			failures = append(failures, d)
		case digest.DeliveryQueued:
			queued++
		}
	}
	stats, err := adminapi.Direct{Store: m.store}.EditionStats(ed.ID)
	if err != nil {
		return err
	}
	if m.g.json {
		if failures == nil {
			failures = []digest.Delivery{}
		}
		return m.printJSON(map[string]any{"edition": ed, "queued": queued, "failures": failures, "stats": stats})
	}
	kv(m.Stdout, "edition", ed.ID, "list", ed.List, "status", ed.Status, "reason", orDash(ed.Reason), "subject", ed.Subject,
		"created", fmtTime(ed.Created), "finished", fmtTime(ed.Finished),
		"deliveries", fmt.Sprintf("%d sent, %d failed, %d suppressed, %d queued", ed.Sent, ed.Failed, ed.Suppressed, queued),
		"clicks", fmt.Sprint(stats.Clicks),
		"unsubscribes", fmt.Sprintf("%d (recipients who left the list after this edition, before the next)", stats.Unsubscribes))
	fmt.Fprintln(m.Stdout)
	printPicks(m, ed)
	fmt.Fprintln(m.Stdout)
	ct := m.table("CLICKS", "SECTION", "ARTICLE", "TITLE")
	for _, s := range stats.Stories {
		ct.row(s.Clicks, s.Section, s.Article, truncate(s.Title, 60))
	}
	ct.flush()
	if len(failures) > 0 {
		fmt.Fprintln(m.Stdout)
		t := m.table("EMAIL", "STATUS", "ATTEMPTS", "REPLY")
		for _, d := range failures {
			t.row(d.Email, d.Status, d.Attempts, truncate(d.Reply, 90))
		}
		t.flush()
	}
	return nil
}

func editionsResume(ctx context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "editions resume", "[EDITION] [--yes]",
		"Continue sending an edition that was stopped, paused or crashed: only deliveries still queued are sent. Without EDITION, the newest unfinished one.")
	yes := c.fs.Bool("yes", false, "do not ask for confirmation")
	pos, err := c.parseArgs(args, m.Stdout, 0, 1)
	if err != nil {
		return err
	}
	if err := m.open(); err != nil {
		return err
	}
	var ed digest.Edition
	if len(pos) == 1 {
		if ed, err = m.store.GetEdition(pos[0]); err != nil {
			return fmt.Errorf("edition %s: %w", pos[0], err)
		}
	} else {
		eds, err := m.store.Editions("")
		if err != nil {
			return err
		}
		for _, e := range eds {
			if e.Status != digest.EditionSent {
				ed = e
				break
			}
		}
		if ed.ID == "" {
			return errors.New("no unfinished edition to resume")
		}
	}
	if ed.Status == digest.EditionSent {
		fmt.Fprintf(m.Stdout, "edition %s is already sent: nothing to do\n", ed.ID)
		return nil
	}
	if !*yes {
		ok, err := m.confirm(fmt.Sprintf("Resume %s (%s%s)?", ed.ID, ed.Status, strings.TrimSpace(" "+ed.Reason)))
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
	}
	if _, err := m.store.UpdateEdition(ed.ID, func(e *digest.Edition) error {
		if e.Status == digest.EditionPaused {
			e.Status, e.Reason = digest.EditionSending, ""
		}
		return nil
	}); err != nil {
		return err
	}
	e, err := m.engine("")
	if err != nil {
		return err
	}
	return m.deliver(ctx, e, ed.ID)
}

func editionsPause(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "editions pause", "EDITION",
		"Pause an edition that is being sent: a running send stops after its current page of recipients, queued deliveries stay queued, and 'newsdigest editions resume' continues.")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	if err := m.open(); err != nil {
		return err
	}
	ed, err := m.store.UpdateEdition(pos[0], func(e *digest.Edition) error {
		if e.Status == digest.EditionSending {
			e.Status, e.Reason = digest.EditionPaused, "paused by an operator"
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("edition %s: %w", pos[0], err)
	}
	if m.g.json {
		return m.printJSON(ed)
	}
	switch ed.Status {
	case digest.EditionPaused:
		fmt.Fprintf(m.Stdout, "edition %s paused (%s); continue with 'newsdigest editions resume %s'\n", ed.ID, ed.Reason, ed.ID)
	default:
		fmt.Fprintf(m.Stdout, "edition %s is %s: nothing to pause\n", ed.ID, ed.Status)
	}
	return nil
}
