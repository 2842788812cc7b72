package delivery

import (
	"bytes"

	"newsdigest/digest"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// RunComposer returns what a Deliver worker uses to compose: one
// composer for the edition (its templates compiled once per variant),
// writing each message into the caller's reused buffer.
func RunComposer(e *Engine, list subscribers.List, ed digest.Edition) (func(*render.Prepared, subscribers.Subscriber, *bytes.Buffer) (mailer.Envelope, [][]byte, error), error) {
	c, err := e.newComposer(list, ed)
	if err != nil {
		return nil, err
	}
	return c.message, nil
}

// GoMailComposer returns the reference path, what a Deliver worker did
// before templates: the bodies personalized into reused buffers, a go-mail
// message built with every header checked (mailer.Build) and written by
// mailer.Encode, per message.
func GoMailComposer(e *Engine, list subscribers.List, ed digest.Edition) (func(*render.Prepared, subscribers.Subscriber, *bytes.Buffer) (mailer.Envelope, error), error) {
	c, err := e.newComposer(list, ed)
	if err != nil {
		return nil, err
	}
	var html, text []byte
	return func(prep *render.Prepared, sub subscribers.Subscriber, buf *bytes.Buffer) (mailer.Envelope, error) {
		msg, h, t, err := c.compose(prep, sub, html, text)
		html, text = h, t
		if err != nil {
			return mailer.Envelope{}, err
		}
		return mailer.Encode(msg, buf)
	}, nil
}
