package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

// Preview is an edition rendered for one reader, without sending.
type Preview struct {
	Edition digest.Edition
	HTML    []byte
	Text    []byte
	Subject string
	// Empty says the edition would be skipped now: fewer new stories
	// than the list's minimum (for the reader, with --as).
	Empty bool
	// Reader describes whose copy this is, with --as: their topics,
	// frequency and how many stories they were already sent; Skip says
	// why they would get nothing now.
	Reader string
	Skip   string
}

// Preview renders the list's edition as it would be sent now to as (an
// address; empty means a sample reader). For a subscriber it is exactly
// their copy: their topics, their weekday if weekly, without the stories
// they were already sent; Edition.Stories then holds their picks, each
// with why it was picked. Nothing is stored or sent.
func (e *Engine) Preview(listName, as string) (Preview, error) {
	list, err := e.Store.GetList(listName)
	if err != nil {
		return Preview{}, err
	}
	ed, err := e.Build(list)
	var pv Preview
	if errors.Is(err, ErrNothingNew) {
		pv.Empty = true
	} else if err != nil {
		return pv, err
	}
	sub, err := e.reader(as)
	if err != nil {
		return pv, err
	}
	if as != "" && sub.ID != "test" {
		var seen map[string]bool
		if hs := e.historyStore(); hs != nil {
			all, err := hs.SeenStories([]string{sub.Email}, e.now().Add(-e.history()))
			if err != nil {
				return pv, err
			}
			seen = all[sub.Email]
		}
		c := (&variants{e: e, list: list, ed: ed, view: e.View}).content(sub, seen, e.now())
		topics := "all topics"
		if len(sub.Topics) > 0 {
			topics = "topics " + strings.Join(sub.Topics, ", ")
		}
		freq := orDefault(sub.Frequency, subscribers.Daily)
		if freq == subscribers.Weekly {
			freq += " on " + WeekdayOf(sub).String()
		}
		pv.Reader = fmt.Sprintf("%s (%s, %s, status %s, %d stories already sent to them in the last %s)",
			sub.Email, topics, freq, orNone(string(sub.StatusOn(list.Name))), len(seen), e.history())
		ed.Stories, pv.Skip = c.sel, c.skip
		pv.Empty = c.skip != ""
	}
	prep, err := e.Renderer.Prepare(e.View(list, ed))
	if err != nil {
		return pv, err
	}
	ed.Subject = prep.Subject
	pv.Edition, pv.Subject = ed, prep.Subject
	pv.HTML, pv.Text = prep.Personalize(e.Recipient(list, sub))
	return pv, nil
}

// reader is the subscriber a preview or test send is addressed to.
func (e *Engine) reader(addr string) (subscribers.Subscriber, error) {
	if addr == "" {
		return subscribers.Subscriber{ID: "preview", Email: "reader@example.com", Name: "Reader"}, nil
	}
	email, err := subscribers.NormalizeEmail(addr)
	if err != nil {
		return subscribers.Subscriber{}, err
	}
	sub, err := e.Store.GetSubscriber(email)
	if err != nil {
		// Not a subscriber: links still render, with a token that
		// matches nobody.
		return subscribers.Subscriber{ID: "test", Email: email}, nil
	}
	return sub, nil
}

// SendTest sends one copy of the list's current edition to addr through
// the engine's transport. It records nothing: the edition, the ledger and
// the stories' "already sent" state are untouched.
func (e *Engine) SendTest(ctx context.Context, listName, addr string) (digest.Edition, error) {
	list, err := e.Store.GetList(listName)
	if err != nil {
		return digest.Edition{}, err
	}
	ed, err := e.Build(list)
	if err != nil && !(errors.Is(err, ErrNothingNew) && ed.Stories.Len() > 0) {
		return ed, err
	}
	sub, err := e.reader(addr)
	if err != nil {
		return ed, err
	}
	prep, err := e.Renderer.Prepare(e.View(list, ed))
	if err != nil {
		return ed, err
	}
	ed.Subject = "[TEST] " + prep.Subject
	prep.Subject = ed.Subject
	// The message Deliver would send, but for its Message-ID: a random
	// one, so that the reader's real copy later is not taken for a
	// duplicate of this test.
	c, err := e.newComposer(list, ed)
	if err != nil {
		return ed, err
	}
	c.randomIDs = true
	var buf bytes.Buffer
	env, parts, err := c.message(prep, sub, &buf)
	if err != nil {
		return ed, err
	}
	tr, err := e.Dial(ctx)
	if err != nil {
		return ed, fmt.Errorf("connecting: %w", err)
	}
	defer tr.Close()
	if err := tr.Send(ctx, env, parts...); err != nil {
		return ed, fmt.Errorf("sending test copy to %s: %w", sub.Email, err)
	}
	return ed, nil
}

// DryRun composes the list's current edition for every confirmed
// subscriber and hands each message to the engine's transport (typically
// one that writes .eml files), recording nothing: the edition, ledger and
// "already sent" state stay as they were, so a real send afterwards sends
// the same stories.
func (e *Engine) DryRun(ctx context.Context, listName string) (Result, error) {
	res := Result{}
	list, err := e.Store.GetList(listName)
	if err != nil {
		return res, err
	}
	ed, err := e.Build(list)
	res.Edition = ed.ID
	if err != nil {
		return res, err
	}
	prep, err := e.Renderer.Prepare(e.View(list, ed))
	if err != nil {
		return res, err
	}
	ed.Subject = prep.Subject
	tr, err := e.Dial(ctx)
	if err != nil {
		return res, err
	}
	defer tr.Close()
	comp, err := e.newComposer(list, ed)
	if err != nil {
		return res, err
	}
	var buf bytes.Buffer
	vs := &variants{e: e, list: list, ed: ed, view: e.View}
	vs.seed(variantKey(false, ed.Stories), prep)
	hs := e.historyStore()
	after := ""
	for ctx.Err() == nil {
		emails, err := e.Store.ConfirmedEmails(list.Name, after, 1000)
		if err != nil || len(emails) == 0 {
			return res, err
		}
		for _, email := range emails {
			if ctx.Err() != nil {
				break // the writer went away (or a stop): no more messages
			}
			after = email
			sub, err := e.Store.GetSubscriber(email)
			if err != nil {
				return res, err
			}
			if _, ok, _ := e.Store.Suppressed(email); ok {
				res.Suppressed++
				continue
			}
			var seen map[string]bool
			if hs != nil {
				all, err := hs.SeenStories([]string{sub.Email}, e.now().Add(-e.history()))
				if err != nil {
					return res, err
				}
				seen = all[sub.Email]
			}
			c := vs.content(sub, seen, e.now())
			if c.skip != "" {
				res.Skipped++
				continue
			}
			vprep, err := vs.get(c)
			if err != nil {
				return res, err
			}
			env, parts, err := comp.message(vprep, sub, &buf)
			if err == nil {
				err = tr.Send(ctx, env, parts...)
			}
			if err != nil {
				res.Failed++
				e.log().Error("dry run", "email", email, "err", err)
				continue
			}
			res.Sent++
		}
	}
	return res, ctx.Err()
}
