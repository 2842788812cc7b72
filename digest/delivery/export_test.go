package delivery

import (
	"github.com/wneessen/go-mail"

	"newsdigest/digest"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// RunComposer returns what a Deliver worker uses to compose: the
// edition's parts worked out once, and body buffers reused from one
// message to the next (a message is valid until the next call).
func RunComposer(e *Engine, list subscribers.List, ed digest.Edition) (func(*render.Prepared, subscribers.Subscriber) (*mail.Msg, error), error) {
	c, err := e.newComposer(list, ed)
	if err != nil {
		return nil, err
	}
	var html, text []byte
	return func(prep *render.Prepared, sub subscribers.Subscriber) (msg *mail.Msg, err error) {
		msg, html, text, err = c.compose(prep, sub, html, text)
		return msg, err
	}, nil
}
