package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/delivery"
	"newsdigest/subscribers"
)

func runSend(ctx context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "send", "[--list L] [--to ADDR] [--dry-run DIR] [--yes] [--force] [--force-new]",
		`Build the list's edition now and send it to every confirmed subscriber over
the SMTP server in the config. An edition with no new stories is skipped;
each subscriber gets their own copy (their topics, no story twice) and one
with nothing new for them is skipped. An edition is the list's for a
period: from its latest cron slot (or the UTC date, for a list without a
cron schedule); a second send in the same period is refused unless
--force-new, which sends a new edition. When 'newsdigest serve' holds the
database, the daemon sends it (through its admin API).
Sending is recorded per recipient: if it is stopped (Ctrl-C) or crashes,
'newsdigest editions resume' continues where it was. --to sends one test
copy and records nothing; --dry-run writes one .eml per recipient to DIR
and records nothing. The edition is first checked like 'newsdigest check
--list L': an error refuses to send (and to send a test copy) unless
--force; a dry run only prints the findings.`)
	list := c.fs.String("list", "", "list to send (default: the only list)")
	to := c.fs.String("to", "", "send one test copy to `ADDR` only")
	dryRun := c.fs.String("dry-run", "", "write .eml files to `DIR` instead of sending")
	yes := c.fs.Bool("yes", false, "do not ask for confirmation")
	force := c.fs.Bool("force", false, "send even if 'check' finds errors in the edition")
	forceNew := c.fs.Bool("force-new", false, "send a new edition even if this period's edition exists")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	if err := m.open(); err != nil {
		if errors.Is(err, boltstore.ErrLocked) && *to == "" && *dryRun == "" {
			return m.sendThroughDaemon(*list, *yes, *force, *forceNew, err)
		}
		return err
	}
	name, err := m.listName(*list)
	if err != nil {
		return err
	}
	e, err := m.engine(*dryRun)
	if err != nil {
		return err
	}

	// The email standard first: the same check as 'newsdigest check'.
	if err := m.preflight(engineEditor{e}, name, *force || *dryRun != ""); err != nil {
		return err
	}

	switch {
	case *to != "":
		ed, err := e.SendTest(ctx, name, *to)
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "test copy of %s (%d stories) sent to %s\n", name, ed.Stories.Len(), *to)
		return nil
	case *dryRun != "":
		res, err := e.DryRun(ctx, name)
		if errors.Is(err, delivery.ErrNothingNew) {
			fmt.Fprintf(m.Stdout, "skipped: %v\n", err)
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "dry run: %d messages written to %s (%d suppressed, %d failed); nothing was sent or recorded\n",
			res.Sent, *dryRun, res.Suppressed, res.Failed)
		return nil
	}

	l, err := m.store.GetList(name)
	if err != nil {
		return err
	}
	if !*forceNew {
		// Refused before anything else: the period's edition exists.
		id := digest.EditionID(name, delivery.ManualSlot(l, e.Clock.Now()))
		if _, err := m.store.GetEdition(id); err == nil {
			_, err := e.Trigger(name, false) // says what became of it
			return err
		}
	}
	ed, err := e.Build(l)
	if errors.Is(err, delivery.ErrNothingNew) {
		if m.g.json {
			return m.printJSON(map[string]any{"list": name, "skipped": true, "reason": err.Error()})
		}
		fmt.Fprintf(m.Stdout, "skipped: %v\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	n, err := m.store.CountSubscribers(name, subscribers.Confirmed)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("list %s has no confirmed subscribers", name)
	}
	if !*yes {
		ok, err := m.confirm(fmt.Sprintf("Send %s (%d stories) to %d subscribers of %s?", ed.ID, ed.Stories.Len(), n, name))
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(m.Stdout, "not sent")
			return nil
		}
	}
	ed, err = e.Trigger(name, *forceNew)
	if errors.Is(err, delivery.ErrNothingNew) {
		fmt.Fprintf(m.Stdout, "skipped: %v\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	return m.deliver(ctx, e, ed.ID)
}

// sendThroughDaemon asks the daemon that holds the database to send the
// list's edition now (POST /api/lists/{name}/send).
func (m *Main) sendThroughDaemon(list string, yes, force, forceNew bool, openErr error) error {
	cl, err := m.adminClient()
	if err != nil {
		return fmt.Errorf("%w; and the daemon's admin API cannot be used: %v", openErr, err)
	}
	m.admin = cl
	name, err := m.listName(list)
	if err != nil {
		return err
	}
	// The same check as a send of the CLI's own, on the message the
	// daemon composes.
	if err := m.preflight(cl, name, force); err != nil {
		return err
	}
	if !yes {
		ok, err := m.confirm(fmt.Sprintf("Send the edition of %s now (through the running daemon)?", name))
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(m.Stdout, "not sent")
			return nil
		}
	}
	res, err := cl.Send(name, forceNew)
	if err != nil {
		return err
	}
	if m.g.json {
		return m.printJSON(res)
	}
	if res.Skipped {
		fmt.Fprintf(m.Stdout, "skipped: %s\n", res.Reason)
		return nil
	}
	fmt.Fprintf(m.Stdout, "edition %s (%d stories) recorded; the daemon is sending it (see its log)\n", res.Edition, res.Stories)
	return nil
}

// deliver runs the delivery of an edition with a progress display and
// prints the result.
func (m *Main) deliver(ctx context.Context, e *delivery.Engine, id string) error {
	p := newProgress(m.Stderr, "sending "+id)
	if !m.g.json {
		e.Progress = p.update
	}
	res, err := e.Deliver(ctx, id)
	p.finish()
	return m.printDelivery(res, err, id)
}

// printDelivery prints the result of an edition's delivery, as deliver
// and followResume see it.
func (m *Main) printDelivery(res delivery.Result, err error, id string) error {
	if m.g.json {
		out := map[string]any{"edition": id, "sent": res.Sent, "failed": res.Failed, "suppressed": res.Suppressed, "elapsed_ms": res.Elapsed.Milliseconds()}
		if err != nil {
			out["error"] = err.Error()
		}
		if jerr := m.printJSON(out); jerr != nil {
			return jerr
		}
		return err
	}
	fmt.Fprintln(m.Stdout, res.String())
	if err != nil {
		return fmt.Errorf("%w; continue with 'newsdigest editions resume %s'", err, id)
	}
	if res.Failed > 0 {
		fmt.Fprintf(m.Stdout, "see the failures with 'newsdigest editions show %s'\n", id)
	}
	return nil
}

// confirm asks a yes/no question on the terminal. Without a terminal it
// refuses, so that scripts must say --yes.
func (m *Main) confirm(q string) (bool, error) {
	f, ok := m.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, usageError{"not a terminal to ask on: add --yes to go ahead without confirmation"}
	}
	fmt.Fprintf(m.Stderr, "%s [y/N] ", q)
	line, _ := bufio.NewReader(f).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes", nil
}
