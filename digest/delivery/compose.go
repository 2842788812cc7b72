package delivery

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/wneessen/go-mail"

	"newsdigest/digest"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// composer holds what every message of one edition shares, worked out
// once (per Deliver run) instead of per message: the From's domain, the
// unsubscribe mailto, the List-Id and the Feedback-ID. Every header is
// still checked by mailer.Build, per message.
type composer struct {
	e          *Engine
	list       subscribers.List
	ed         digest.Edition
	domain     string // of the From address: Message-IDs and List-Id
	mailto     string // List-Unsubscribe mailto address
	listID     string
	feedbackID string
}

func (e *Engine) newComposer(list subscribers.List, ed digest.Edition) (*composer, error) {
	from, err := subscribers.ParseAddress(list.From)
	if err != nil {
		return nil, fmt.Errorf("list %s: from: %w", list.Name, err)
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	mailto := e.UnsubscribeMailto
	if mailto == "" {
		mailto = from.Address
	}
	return &composer{
		e: e, list: list, ed: ed, domain: domain, mailto: mailto,
		listID:     fmt.Sprintf("%s <%s.%s>", list.Title, list.Name, domain),
		feedbackID: fmt.Sprintf("%s:%s:newsdigest", ed.ID, list.Name),
	}, nil
}

// compose builds sub's message from prep, personalizing its bodies into
// html and text (buffers of an earlier message, or nil). It returns the
// filled buffers: the message refers to them until it is encoded, so they
// may be reused only after that.
func (c *composer) compose(prep *render.Prepared, sub subscribers.Subscriber, html, text []byte) (*mail.Msg, []byte, []byte, error) {
	e := c.e
	rc := e.Recipient(c.list, sub)
	html, text = prep.PersonalizeAppend(rc, html[:0], text[:0])
	var mailtoURL string
	if rc.UnsubscribeURL != "" {
		mailtoURL = c.mailto + "?subject=" + url.PathEscape("unsubscribe "+rc.UnsubscribeURL[strings.LastIndexByte(rc.UnsubscribeURL, '/')+1:])
	}
	msg, err := mailer.Build(mailer.Message{
		From:              c.list.From,
		ReplyTo:           c.list.ReplyTo,
		To:                sub.Email,
		ToName:            sub.Name,
		Subject:           prep.Subject,
		Date:              e.now(),
		MessageID:         mailer.NewMessageID(c.domain),
		ListID:            c.listID,
		UnsubscribeURL:    rc.UnsubscribeURL,
		UnsubscribeMailto: mailtoURL,
		FeedbackID:        c.feedbackID,
		ReturnPath:        e.ReturnPath(c.list, c.ed, sub),
		Text:              text,
		HTML:              html,
	})
	return msg, html, text, err
}
