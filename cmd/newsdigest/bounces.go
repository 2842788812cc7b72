package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"newsdigest/digest"
	"newsdigest/digest/adminapi"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/bounce"
	"newsdigest/subscribers"
)

func runBounces(ctx context.Context, m *Main, args []string) error {
	return subcommand(ctx, m, "bounces", args, map[string]runner{"process": bouncesProcess})
}

// bounceFile is the result of one file.
type bounceFile struct {
	File     string           `json:"file"`
	Outcomes []bounce.Outcome `json:"outcomes,omitempty"`
	Error    string           `json:"error,omitempty"`
}

func bouncesProcess(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "bounces process", "FILE...",
		`Read saved bounce and complaint messages (.eml: RFC 3464 delivery status
notifications, RFC 5965 abuse reports) and act on them: a hard bounce
suppresses the address at once, soft bounces after bounce.soft_limit within
bounce.soft_window, a complaint at once. Each event is recorded on the
subscriber ("subscribers show"). Files that are no usable report are listed
and left alone. Works on the database directly, or through the daemon's
admin API when it holds the file.`)
	pos, err := c.parseArgs(args, m.Stdout, 1, -1)
	if err != nil {
		return err
	}
	process, err := m.bounceProcessor()
	if err != nil {
		return err
	}
	var results []bounceFile
	counts := map[bounce.Kind]int{}
	failed := 0
	for _, path := range pos {
		res := bounceFile{File: path}
		outs, err := process(path)
		if err != nil {
			res.Error = err.Error()
			failed++
		}
		res.Outcomes = outs
		for _, o := range outs {
			counts[o.Kind]++
		}
		results = append(results, res)
		if !m.g.json {
			if err != nil {
				fmt.Fprintf(m.Stderr, "%s: %v\n", path, err)
			}
			for _, o := range outs {
				if o.Kind == bounce.Other {
					fmt.Fprintf(m.Stdout, "%s: %s\n", path, cleanCell(o.Action))
					continue
				}
				fmt.Fprintf(m.Stdout, "%s: %s bounce %s %s: %s\n", path, o.Kind, o.Email, orDash(o.Status), cleanCell(o.Action))
			}
		}
	}
	if m.g.json {
		if err := m.printJSON(results); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(m.Stdout, "processed %d files: %d hard, %d soft, %d complaints, %d not usable (left alone)\n",
			len(pos), counts[bounce.Hard], counts[bounce.Soft], counts[bounce.Complaint], counts[bounce.Other])
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files could not be processed", failed, len(pos))
	}
	return nil
}

// bounceProcessor returns a function that processes one file: on the
// database directly, or through the daemon that holds it.
func (m *Main) bounceProcessor() (func(path string) ([]bounce.Outcome, error), error) {
	if err := m.loadConfig(); err != nil {
		return nil, err
	}
	st, err := boltstore.Open(m.cfg.DB, boltstore.Options{Timeout: -1})
	if errors.Is(err, boltstore.ErrLocked) {
		cl, apiErr := m.adminClient()
		if apiErr != nil {
			return nil, fmt.Errorf("%w; and the daemon's admin API cannot be used: %v", err, apiErr)
		}
		return func(path string) ([]bounce.Outcome, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			var outs []bounce.Outcome
			err = cl.ProcessBounce(filepath.Base(path), f, &outs)
			return outs, err
		}, nil
	}
	if err != nil {
		return nil, err
	}
	m.store = st
	p, err := m.newBounceProcessor(false)
	if err != nil {
		return nil, err
	}
	return func(path string) ([]bounce.Outcome, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return p.Process(f, filepath.Base(path))
	}, nil
}

// newBounceProcessor makes the processor of the open store. The listener
// requires a VERP token when bounce.require_token says so; files and the
// admin API are trusted.
func (m *Main) newBounceProcessor(listener bool) (*bounce.Processor, error) {
	signer, err := m.signer()
	if err != nil {
		return nil, err
	}
	return &bounce.Processor{
		Store:        m.store,
		Signer:       signer,
		RequireToken: listener && m.cfg.Bounce.RequireToken,
		SoftLimit:    m.cfg.Bounce.SoftLimit,
		SoftWindow:   m.cfg.Bounce.SoftWindow.Duration,
		Clock:        digest.SystemClock{},
		Log:          m.log.With("component", "bounce"),
	}, nil
}

// subscriberEvents returns the bounce and complaint events of email, from
// the store or the daemon.
func (m *Main) subscriberEvents(email string) ([]subscribers.Event, error) {
	if m.store != nil {
		return m.store.Events(email)
	}
	if cl, ok := m.admin.(*adminapi.Client); ok {
		return cl.Events(email)
	}
	return nil, nil
}

// processBounceAPI serves POST /api/bounces in the daemon.
func processBounceAPI(p *bounce.Processor) func(r io.Reader, source string) (any, error) {
	return func(r io.Reader, source string) (any, error) {
		return p.Process(r, source)
	}
}

// subscriberWithEvents is subscribers show --json: the subscriber's fields
// and, when there are any, its bounce and complaint events.
type subscriberWithEvents struct {
	subscribers.Subscriber
	Events []subscribers.Event `json:"events,omitempty"`
}

// printEvents prints a subscriber's events under the other fields.
func printEvents(w io.Writer, evs []subscribers.Event) {
	if len(evs) == 0 {
		return
	}
	fmt.Fprintf(w, "events:\n")
	for _, ev := range evs {
		fmt.Fprintf(w, "  %s  %-11s %s %s %s: %s\n", fmtTime(ev.At), ev.Kind, orDash(ev.Status), orDash(ev.Edition),
			cleanCell(truncate(ev.Detail, 80)), cleanCell(ev.Action))
	}
}
