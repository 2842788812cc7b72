package bounce

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

// Store is what a Processor needs of storage.
type Store interface {
	GetSubscriber(email string) (subscribers.Subscriber, error)
	GetSubscriberByID(id string) (subscribers.Subscriber, error)
	RecordEvent(email string, ev subscribers.Event) error
	CountEvents(email string, kind subscribers.EventKind, since time.Time) (int, error)
	Suppress(email, reason string, at time.Time) error
	MarkSubscriber(email string, lists []string, st subscribers.Status, at time.Time) ([]string, error)
}

// Defaults of the soft-bounce policy.
const (
	DefaultSoftLimit  = 3
	DefaultSoftWindow = 7 * 24 * time.Hour
)

// Processor records what reports say and acts on it: a hard bounce
// suppresses the address and marks the subscriber bounced at once, soft
// bounces do so only when SoftLimit of them fall within SoftWindow, and a
// complaint suppresses the address and marks the subscriber complained on
// the list the message came from (every list when that is unknown).
type Processor struct {
	Store Store
	// Signer verifies VERP tokens; nil means tokens are ignored.
	Signer *subscribers.Signer
	// RequireToken makes the processor act only on reports that carry a
	// valid VERP token, so that nobody can suppress an address by mailing
	// a forged report. The SMTP listener sets it; files an operator
	// processes by hand are trusted without one.
	RequireToken bool
	SoftLimit    int           // default DefaultSoftLimit
	SoftWindow   time.Duration // default DefaultSoftWindow
	Clock        digest.Clock
	Log          *slog.Logger
	// Observe, if set, is called once per outcome with its kind (for
	// metrics).
	Observe func(Kind)
}

// Outcome is what the processor did about one recipient of a report, or
// about a message it could not use (Kind Other).
type Outcome struct {
	Kind       Kind   `json:"kind"`
	Email      string `json:"email,omitempty"`
	List       string `json:"list,omitempty"`
	Edition    string `json:"edition,omitempty"`
	Status     string `json:"status,omitempty"`
	Detail     string `json:"detail,omitempty"`
	Suppressed bool   `json:"suppressed"`
	Action     string `json:"action"` // what was done, or why the message was kept aside
}

func (p *Processor) now() time.Time {
	if p.Clock == nil {
		return time.Now()
	}
	return p.Clock.Now()
}

func (p *Processor) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Process parses one message and applies it. source names where it came
// from ("smtp", a file name) in the recorded events; envelopeTo are the
// addresses it was delivered to. The outcomes are never empty: a message
// that is not a usable report gives one Outcome of Kind Other whose Action
// says why, for the caller to keep the message aside. The error is a
// storage failure only: the message should be tried again later.
func (p *Processor) Process(r io.Reader, source string, envelopeTo ...string) ([]Outcome, error) {
	rep, perr := Parse(r, envelopeTo...)
	outs, err := p.apply(rep, perr, source)
	for _, o := range outs {
		if p.Observe != nil && err == nil {
			p.Observe(o.Kind)
		}
		lvl := slog.LevelInfo
		if o.Kind == Other {
			lvl = slog.LevelWarn
		}
		p.log().Log(context.Background(), lvl, "bounce report", "source", source, "kind", o.Kind, "email", o.Email,
			"list", o.List, "edition", o.Edition, "status", o.Status, "action", o.Action)
	}
	return outs, err
}

func other(reason string) []Outcome {
	return []Outcome{{Kind: Other, Action: "kept aside: " + clip(reason)}}
}

func (p *Processor) apply(rep *Report, perr error, source string) ([]Outcome, error) {
	if perr != nil {
		return other(perr.Error()), nil
	}
	kind := rep.Kind()
	if kind == Other {
		return other(fmt.Sprintf("%s report about no bounce or complaint (%s)", rep.Type, actions(rep))), nil
	}

	// A valid VERP token names the subscriber and the edition; our
	// messages have one recipient each, so the most severe outcome in the
	// report is theirs.
	sub, claims, ok := p.resolve(rep)
	var targets []Outcome
	switch {
	case ok:
		rc := worst(rep)
		o := Outcome{Kind: rc.Kind, Email: sub.Email, Status: rc.Status, Detail: detail(rc)}
		if list := claims.ListAmong(slices.Sorted(maps.Keys(sub.Lists))); list != "" {
			o.List, o.Edition = list, digest.EditionID(list, claims.Slot)
		}
		targets = append(targets, o)
	case p.RequireToken:
		return other(fmt.Sprintf("%s report without a valid VERP token (recipient %s): not trusted", rep.Type, orUnknown(worst(rep).Email))), nil
	default:
		for _, rc := range rep.Recipients {
			if rc.Kind == Other || rc.Email == "" {
				continue
			}
			targets = append(targets, Outcome{Kind: rc.Kind, Email: rc.Email, Status: rc.Status, Detail: detail(rc)})
		}
		if len(targets) == 0 {
			return other(rep.Type + " report names no recipient address"), nil
		}
	}
	for i := range targets {
		if err := p.act(&targets[i], source); err != nil {
			return targets, err
		}
	}
	return targets, nil
}

// resolve finds the first report token that verifies and names a
// subscriber.
func (p *Processor) resolve(rep *Report) (subscribers.Subscriber, subscribers.BounceClaims, bool) {
	if p.Signer == nil {
		return subscribers.Subscriber{}, subscribers.BounceClaims{}, false
	}
	for _, tok := range rep.Tokens {
		c, err := p.Signer.VerifyBounce(tok)
		if err != nil {
			continue
		}
		sub, err := p.Store.GetSubscriberByID(c.SubscriberID)
		if err != nil {
			p.log().Warn("bounce token names no subscriber", "subscriber_id", c.SubscriberID, "err", err)
			continue
		}
		return sub, c, true
	}
	return subscribers.Subscriber{}, subscribers.BounceClaims{}, false
}

// act records the event and suppresses or counts.
func (p *Processor) act(o *Outcome, source string) error {
	now := p.now()
	ev := subscribers.Event{At: now, Edition: o.Edition, List: o.List, Status: o.Status, Detail: o.Detail, Source: source}
	_, subErr := p.Store.GetSubscriber(o.Email)
	known := subErr == nil
	var status subscribers.Status
	var lists []string
	switch o.Kind {
	case Hard:
		ev.Kind = subscribers.EventHardBounce
		status = subscribers.Bounced
		o.Action = "suppressed (hard bounce)"
		if err := p.Store.Suppress(o.Email, strings.TrimSpace("hard bounce "+o.Status+" "+o.Detail), now); err != nil {
			return err
		}
	case Soft:
		ev.Kind = subscribers.EventSoftBounce
		limit, window := p.SoftLimit, p.SoftWindow
		if limit <= 0 {
			limit = DefaultSoftLimit
		}
		if window <= 0 {
			window = DefaultSoftWindow
		}
		n, err := p.Store.CountEvents(o.Email, subscribers.EventSoftBounce, now.Add(-window))
		if err != nil {
			return err
		}
		n++
		o.Action = fmt.Sprintf("soft bounce %d of %d within %s", n, limit, window)
		if n >= limit {
			status = subscribers.Bounced
			o.Action = fmt.Sprintf("suppressed (%d soft bounces within %s)", n, window)
			if err := p.Store.Suppress(o.Email, fmt.Sprintf("%d soft bounces within %s, last %s %s", n, window, o.Status, o.Detail), now); err != nil {
				return err
			}
		}
	case Complaint:
		ev.Kind = subscribers.EventComplaint
		status = subscribers.Complained
		if o.List != "" {
			lists = []string{o.List}
		}
		o.Action = "suppressed (complaint)"
		if err := p.Store.Suppress(o.Email, strings.TrimSpace("complaint "+o.Detail), now); err != nil {
			return err
		}
	}
	o.Suppressed = status != ""
	if status != "" && known {
		changed, err := p.Store.MarkSubscriber(o.Email, lists, status, now)
		if err != nil {
			return err
		}
		if len(changed) > 0 {
			o.Action += fmt.Sprintf("; %s on %s", status, strings.Join(changed, ", "))
		}
	}
	if !known {
		o.Action += "; not a subscriber"
	}
	ev.Action = o.Action
	return p.Store.RecordEvent(o.Email, ev)
}

func worst(rep *Report) Recipient {
	var best Recipient
	for i, rc := range rep.Recipients {
		if i == 0 || rank(rc.Kind) > rank(best.Kind) {
			best = rc
		}
	}
	return best
}

func detail(rc Recipient) string {
	if rc.FeedbackType != "" {
		return rc.FeedbackType
	}
	return rc.Diagnostic
}

func actions(rep *Report) string {
	var as []string
	for _, rc := range rep.Recipients {
		a := rc.Action
		if a == "" {
			a = rc.FeedbackType
		}
		as = append(as, a)
	}
	return strings.Join(as, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
