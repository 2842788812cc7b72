package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

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
	if err := m.openAdmin(); err != nil {
		return err
	}
	if *list != "" {
		if _, err := m.admin.GetList(*list); err != nil {
			return fmt.Errorf("list %s: %w", *list, err)
		}
	}
	eds, err := m.admin.Editions(*list)
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
	if err := m.openAdmin(); err != nil {
		return err
	}
	det, err := m.admin.EditionDetail(pos[0])
	if err != nil {
		return fmt.Errorf("edition %s: %w", pos[0], err)
	}
	ed, queued, failures, stats := det.Edition, det.Queued, det.Failures, det.Stats
	more := det.FailuresTotal - len(failures) // listed: the first adminapi.DetailFailures
	if m.g.json {
		if failures == nil {
			failures = []digest.Delivery{}
		}
		return m.printJSON(map[string]any{"edition": ed, "queued": queued, "failures": failures,
			"failures_total": len(failures) + max(more, 0), "stats": stats})
	}
	kv(m.Stdout, "edition", ed.ID, "list", ed.List, "status", ed.Status, "reason", orDash(ed.Reason), "subject", ed.Subject,
		"created", fmtTime(ed.Created), "finished", fmtTime(ed.Finished),
		"deliveries", fmt.Sprintf("%d sent, %d failed, %d suppressed, %d queued", ed.Sent, ed.Failed, ed.Suppressed, queued)+skippedNote(ed.Skipped),
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
		if more > 0 {
			fmt.Fprintf(m.Stdout, "… and %d more failed or suppressed\n", more)
		}
	}
	return nil
}

func editionsResume(ctx context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "editions resume", "[EDITION] [--yes]",
		`Continue sending an edition that was stopped, paused or crashed: only
deliveries still queued are sent. Without EDITION, the newest unfinished
one. When 'newsdigest serve' holds the database, the daemon sends it and
this command follows it; Ctrl-C pauses the daemon's send.`)
	yes := c.fs.Bool("yes", false, "do not ask for confirmation")
	pos, err := c.parseArgs(args, m.Stdout, 0, 1)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	var ed digest.Edition
	if len(pos) == 1 {
		if ed, err = m.admin.GetEdition(pos[0]); err != nil {
			return fmt.Errorf("edition %s: %w", pos[0], err)
		}
	} else {
		eds, err := m.admin.Editions("")
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
	if cl, ok := m.admin.(*adminapi.Client); ok {
		// The daemon holds the file: it sends, the CLI follows.
		return m.followResume(ctx, cl, ed.ID)
	}
	// Deliver switches a paused edition back to sending itself, once it
	// sends: an error before leaves it paused.
	e, err := m.engine("")
	if err != nil {
		return err
	}
	return m.deliver(ctx, e, ed.ID)
}

func editionsPause(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "editions pause", "EDITION",
		"Pause an edition that is being sent: a running send stops within a ledger commit (messages in flight finish), queued deliveries stay queued, and 'newsdigest editions resume' continues.")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	if err := m.openAdmin(); err != nil {
		return err
	}
	ed, err := m.admin.PauseEdition(pos[0])
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

// followPoll is how often followResume asks the daemon how its send goes.
const followPoll = 200 * time.Millisecond

// followResume has the daemon that holds the database continue the
// edition's send, and follows it (progress, then the result) the way
// deliver shows a send of the CLI's own. Ctrl-C pauses the send, as it
// stops a send of the CLI's own, and waits until the daemon has stopped
// it; a second Ctrl-C stops waiting (the daemon still pauses the send).
// When the daemon stops answering, it says what became of the edition.
func (m *Main) followResume(ctx context.Context, cl *adminapi.Client, id string) error {
	run, err := cl.Resume(id)
	if err != nil {
		return err
	}
	return m.followRun(ctx, cl, id, run)
}

// followRun follows the daemon's run of the edition's send from run on,
// as followResume describes, and prints its result as deliver does.
func (m *Main) followRun(ctx context.Context, cl *adminapi.Client, id string, run adminapi.DeliveryRun) error {
	p := newProgress(m.Stderr, "sending "+id)
	shown := 0
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	var again chan os.Signal // after the first Ctrl-C: the second
	for run.Running {
		select {
		case <-ctx.Done():
			if again == nil {
				again = make(chan os.Signal, 1)
				signal.Notify(again, os.Interrupt, syscall.SIGTERM)
				defer signal.Stop(again)
				if _, err := cl.PauseEdition(id); err != nil {
					p.finish()
					return m.lostFollow(id, run, fmt.Errorf("pausing the daemon's send: %w", err))
				}
				fmt.Fprintf(m.Stderr, "pausing the daemon's send of %s (Ctrl-C again to stop waiting)…\n", id)
			}
			select {
			case <-tick.C:
			case <-again:
				p.finish()
				return fmt.Errorf("edition %s: stopped waiting; the daemon pauses its send after the current page: see 'newsdigest editions show %s', continue with 'newsdigest editions resume %s'", id, id, id)
			}
		case <-tick.C:
		}
		next, err := cl.Run(id)
		if err != nil {
			p.finish()
			return m.lostFollow(id, run, err)
		}
		run = next
		if !m.g.json && run.Done > shown {
			shown = run.Done
			p.update(run.Done, run.Total)
		}
	}
	p.finish()
	return m.printDelivery(run.Result(), run.Err(), id)
}

// lostFollow tells what became of an edition whose send the CLI followed
// when the daemon stopped answering (it stopped, or restarted and knows
// no run of it): the edition's status, from the daemon or from the
// database once the daemon let it go, and what to do.
func (m *Main) lostFollow(id string, last adminapi.DeliveryRun, cause error) error {
	lost := fmt.Sprintf("edition %s: lost the daemon's send (%d of %d done when last seen): %v", id, last.Done, last.Total, cause)
	ed, err := m.admin.GetEdition(id)
	if err != nil && m.store == nil {
		if oerr := m.open(); oerr == nil {
			m.admin = adminapi.Direct{Store: m.store}
			ed, err = m.store.GetEdition(id)
		} else {
			err = oerr
		}
	}
	switch {
	case err != nil:
		return fmt.Errorf("%s; its state cannot be read now (%v): look with 'newsdigest editions show %s'; a stopped send continues with 'newsdigest editions resume %s'", lost, err, id, id)
	case ed.Status == digest.EditionSent:
		fmt.Fprintf(m.Stderr, "newsdigest: %s\n", lost)
		fmt.Fprintf(m.Stdout, "edition %s is sent: %d sent, %d failed, %d suppressed\n", id, ed.Sent, ed.Failed, ed.Suppressed)
		return nil
	case ed.Status == digest.EditionPaused && ed.Reason == "stopped by signal":
		return fmt.Errorf("%s; the daemon stopped and paused the edition: a restarted daemon continues it (within the list's maximum lateness), or run 'newsdigest editions resume %s'", lost, id)
	case ed.Status == digest.EditionPaused:
		return fmt.Errorf("%s; the edition is paused (%s): continue with 'newsdigest editions resume %s'", lost, orDash(ed.Reason), id)
	}
	return fmt.Errorf("%s; the edition is %s (%d sent so far): a restarted daemon continues it, or run 'newsdigest editions resume %s'", lost, ed.Status, ed.Sent, id)
}

// skippedNote is ", N skipped (no copy due)" when readers were skipped.
func skippedNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d skipped (no copy due: see preview --as)", n)
}
