package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/term"

	"newsdigest/digest"
	"newsdigest/digest/adminapi"
	"newsdigest/digest/delivery"
	"newsdigest/digest/mailer"
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
database, the daemon does it through its admin API: it sends the edition
(this command follows its send and shows the same progress and result;
Ctrl-C pauses the daemon's send, a second Ctrl-C stops waiting) and the
test copy, and composes the dry run's messages, which are written here.
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
	cl, err := m.openOrDaemon()
	if err != nil {
		return err
	}
	if cl != nil {
		return m.sendThroughDaemon(ctx, cl, sendOptions{list: *list, to: *to, dryRun: *dryRun, yes: *yes, force: *force, forceNew: *forceNew})
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
		return m.printTestCopy(adminapi.TestResult{Edition: ed.ID, Stories: ed.Stories.Len(), To: *to}, name)
	case *dryRun != "":
		res, err := e.DryRun(ctx, name)
		return m.printDryRun(res, err, *dryRun)
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
		return m.printSkipped(name, err.Error())
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
		return m.printSkipped(name, err.Error())
	}
	if err != nil {
		return err
	}
	return m.deliver(ctx, e, ed.ID)
}

// sendOptions are send's flags.
type sendOptions struct {
	list, to, dryRun     string
	yes, force, forceNew bool
}

// sendThroughDaemon does what send does when the daemon holds the
// database: the daemon sends the list's edition now (POST
// /api/lists/{name}/send), a test copy (…/test) or composes the dry run's
// messages (…/dry-run), which the CLI writes to the directory as a dry
// run of its own does.
func (m *Main) sendThroughDaemon(ctx context.Context, cl *adminapi.Client, o sendOptions) error {
	cl.Context = ctx
	m.admin = cl
	name, err := m.listName(o.list)
	if err != nil {
		return err
	}
	if o.dryRun != "" {
		if err := os.MkdirAll(o.dryRun, 0o755); err != nil {
			return err
		}
	}
	// The same check as a send of the CLI's own, on the message the
	// daemon composes.
	if err := m.preflight(cl, name, o.force || o.dryRun != ""); err != nil {
		return err
	}
	switch {
	case o.to != "":
		res, err := cl.SendTest(name, o.to)
		if err != nil {
			return err
		}
		res.To = o.to
		return m.printTestCopy(res, name)
	case o.dryRun != "":
		tr := &emlTransport{dir: o.dryRun, n: new(atomic.Int64)}
		res, err := cl.DryRun(name, func(to string, eml []byte) error {
			return tr.Send(ctx, mailer.Envelope{To: []string{to}}, eml)
		})
		return m.printDryRun(res, err, o.dryRun)
	}
	yes, forceNew := o.yes, o.forceNew
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
	// The send and the follow outlive a Ctrl-C: it pauses the daemon's
	// send (followRun), and the CLI asks on until the daemon stopped it.
	cl.Context = context.WithoutCancel(ctx)
	res, err := cl.Send(name, forceNew)
	if err != nil {
		return err
	}
	if res.Skipped {
		return m.printSkipped(name, res.Reason)
	}
	// The daemon sends it; the CLI follows its run (progress, then the
	// result) as 'editions resume' does, and Ctrl-C pauses it.
	run, err := cl.Run(res.Edition)
	if err != nil {
		return m.lostFollow(res.Edition, adminapi.DeliveryRun{Edition: res.Edition, Running: true, Total: res.Recipients}, err)
	}
	return m.followRun(ctx, cl, res.Edition, run)
}

// printSkipped says that the list's edition was skipped (nothing new).
func (m *Main) printSkipped(list, reason string) error {
	if m.g.json {
		return m.printJSON(map[string]any{"list": list, "skipped": true, "reason": reason})
	}
	fmt.Fprintf(m.Stdout, "skipped: %s\n", reason)
	return nil
}

// printTestCopy says that a test copy of the list's edition was sent.
func (m *Main) printTestCopy(res adminapi.TestResult, list string) error {
	if m.g.json {
		return m.printJSON(map[string]any{"list": list, "edition": res.Edition, "stories": res.Stories, "test_copy_to": res.To})
	}
	fmt.Fprintf(m.Stdout, "test copy of %s (%d stories) sent to %s\n", list, res.Stories, res.To)
	return nil
}

// printDryRun prints what a dry run wrote.
func (m *Main) printDryRun(res delivery.Result, err error, dir string) error {
	if errors.Is(err, delivery.ErrNothingNew) {
		if m.g.json {
			return m.printJSON(map[string]any{"skipped": true, "reason": err.Error()})
		}
		fmt.Fprintf(m.Stdout, "skipped: %v\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	if m.g.json {
		return m.printJSON(map[string]any{"dry_run": dir, "written": res.Sent, "suppressed": res.Suppressed, "failed": res.Failed})
	}
	fmt.Fprintf(m.Stdout, "dry run: %d messages written to %s (%d suppressed, %d failed); nothing was sent or recorded\n",
		res.Sent, dir, res.Suppressed, res.Failed)
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
