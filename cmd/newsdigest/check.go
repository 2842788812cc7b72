package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"newsdigest/digest"
	"newsdigest/digest/adminapi"
	"newsdigest/digest/delivery"
	"newsdigest/digest/lint"
	"newsdigest/subscribers"
)

// checkReport is one checked message, as printed with --json.
type checkReport struct {
	Source    string         `json:"source"` // a file name, or "list L"
	Edition   string         `json:"edition,omitempty"`
	Skipped   bool           `json:"skipped,omitempty"` // the edition would be skipped now (no new stories)
	Errors    int            `json:"errors"`
	Warnings  int            `json:"warnings"`
	HTMLBytes int            `json:"html_bytes"`
	Findings  []lint.Finding `json:"findings"`
}

func runCheck(ctx context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "check", "FILE.eml... [--system] | --list L",
		`Check a message against the email standard (brief section 4) and print
each finding with its rule and severity: headers (From, Date, Message-ID,
duplicates, line length, List-Unsubscribe and One-Click, List-Id,
Feedback-ID), structure (multipart/alternative, text first, HTML last, the
same links in both), the unsubscribe link and postal address in the body,
the HTML size, images (alt, width, height, https), the preheader, colours,
forbidden elements and CSS, and links. Exit status 1 when any message has
an error; warnings do not fail.

With FILE.eml (or - for standard input) the files are checked as they are;
--system checks a confirmation or welcome email, which is not list mail:
the list rules (List-Unsubscribe, List-Id, Feedback-ID, unsubscribe link
and postal address in the body) are left out.
With --list L the list's edition is built and composed the way 'send'
would, for a sample reader, and that message is checked; nothing is sent
or recorded. When 'newsdigest serve' holds the database, the daemon
composes it (through its admin API).`)
	list := c.fs.String("list", "", "check the edition `L` would send now")
	system := c.fs.Bool("system", false, "the files are system emails (confirmation, welcome), not list mail")
	pos, err := c.parse(args, m.Stdout)
	if err != nil {
		return err
	}
	if (*list == "") == (len(pos) == 0) {
		return usageError{"check: give FILE.eml or --list L (see newsdigest check --help)"}
	}
	if *system && *list != "" {
		return usageError{"check: --system is for files; a list's edition is list mail"}
	}
	var reps []checkReport
	if *list != "" {
		if err := m.openAdmin(); err != nil {
			return err
		}
		rep, err := m.checkList(*list)
		if err != nil {
			return err
		}
		reps = append(reps, rep)
	} else {
		for _, p := range pos {
			var raw []byte
			if p == "-" {
				raw, err = io.ReadAll(m.Stdin)
			} else {
				raw, err = os.ReadFile(p)
			}
			if err != nil {
				return err
			}
			reps = append(reps, newCheckReport(p, lint.Check(raw, lint.Options{System: *system})))
		}
	}
	errs := 0
	for _, r := range reps {
		errs += r.Errors
	}
	if m.g.json {
		if err := m.printJSON(reps); err != nil {
			return err
		}
	} else {
		for _, r := range reps {
			m.printCheck(r)
		}
	}
	if errs > 0 {
		return fmt.Errorf("check: %d error(s); see the findings above", errs)
	}
	return nil
}

func newCheckReport(source string, r lint.Report) checkReport {
	f := r.Findings
	if f == nil {
		f = []lint.Finding{}
	}
	return checkReport{Source: source, Errors: r.Errors(), Warnings: r.Warnings(), HTMLBytes: r.HTMLBytes, Findings: f}
}

func (m *Main) printCheck(r checkReport) {
	what := r.Source
	if r.Edition != "" {
		what += " (edition " + r.Edition + ")"
	}
	if r.Skipped {
		fmt.Fprintf(m.Stdout, "%s: note: the edition would be skipped now (not enough new stories); checked as rendered\n", what)
	}
	if len(r.Findings) == 0 {
		fmt.Fprintf(m.Stdout, "%s: ok: %d rules, no findings (HTML %d bytes)\n", what, len(lint.Rules), r.HTMLBytes)
		return
	}
	fmt.Fprintf(m.Stdout, "%s: %d error(s), %d warning(s) (HTML %d bytes)\n", what, r.Errors, r.Warnings, r.HTMLBytes)
	for _, f := range r.Findings {
		fmt.Fprintf(m.Stdout, "  %s\n", f)
	}
}

// checkList composes the list's edition for a sample reader, exactly as
// send would (same engine, renderer, templates and headers), and checks it.
// When the daemon holds the database it composes the message (through its
// admin API) and the CLI checks the bytes.
func (m *Main) checkList(name string) (checkReport, error) {
	name, err := m.listName(name)
	if err != nil {
		return checkReport{}, err
	}
	ed, err := m.editor()
	if err != nil {
		return checkReport{}, err
	}
	sm, err := ed.Sample(name)
	if err != nil {
		return checkReport{}, err
	}
	rep := newCheckReport("list "+name, lint.Check(sm.EML, lint.Options{PostalAddress: m.cfg.Site.PostalAddress}))
	rep.Edition, rep.Skipped = sm.Edition.ID, sm.Skipped
	return rep, nil
}

// sampleReader is who check composes the edition for.
var sampleReader = subscribers.Subscriber{ID: "check", Email: "reader@example.com", Name: "Reader"}

// composeSample builds the list's edition now and composes its message for
// the sample reader as the engine sends it (Engine.Message). skipped
// reports that the edition has fewer new stories than the list's minimum
// (it is still composed, with what there is).
func composeSample(e *delivery.Engine, name string) (raw []byte, ed digest.Edition, skipped bool, err error) {
	l, err := e.Store.GetList(name)
	if err != nil {
		return nil, ed, false, err
	}
	ed, err = e.Build(l)
	if errors.Is(err, delivery.ErrNothingNew) {
		skipped = true
	} else if err != nil {
		return nil, ed, false, err
	}
	prep, err := e.Renderer.Prepare(e.View(l, ed))
	if err != nil {
		return nil, ed, skipped, err
	}
	ed.Subject = prep.Subject
	// The bytes Deliver would send this reader, DKIM signature included
	// when one is configured.
	var b bytes.Buffer
	_, parts, err := e.Message(l, ed, prep, sampleReader, &b)
	if err != nil {
		return nil, ed, skipped, err
	}
	return bytes.Join(parts, nil), ed, skipped, nil
}

// preflight checks the list's edition before send. Findings go to
// stderr; an error finding refuses the send (an error) unless force is
// set. An edition with no stories is not checked: send skips it anyway.
func (m *Main) preflight(x adminapi.Editor, name string, force bool) error {
	sm, err := x.Sample(name)
	if err != nil {
		return err
	}
	raw, ed, skipped := sm.EML, sm.Edition, sm.Skipped
	if skipped && ed.Stories.Len() == 0 {
		return nil
	}
	r := lint.Check(raw, lint.Options{PostalAddress: m.cfg.Site.PostalAddress})
	if len(r.Findings) == 0 {
		return nil
	}
	for _, f := range r.Findings {
		fmt.Fprintf(m.Stderr, "check: %s\n", f)
	}
	if r.Errors() == 0 {
		return nil
	}
	if force {
		fmt.Fprintf(m.Stderr, "check: %d error(s) in edition %s; sending anyway\n", r.Errors(), ed.ID)
		return nil
	}
	return fmt.Errorf("edition %s fails %d rule(s) of the email standard (listed above; 'newsdigest check --list %s' shows them again): fix the templates or configuration, or add --force to send anyway", ed.ID, r.Errors(), name)
}
