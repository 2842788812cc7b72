package delivery

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"

	"newsdigest/digest"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// composer holds what every message of one edition shares, worked out
// once (per Deliver run, preview or dry run) instead of per message: the
// From's domain, the unsubscribe mailto, the List-Id, the Feedback-ID,
// the bases of the recipient's links and return path, and one compiled
// mailer.Template per prepared variant, so that a
// recipient's message is appended bytes (mailer.Template.Append), not a
// go-mail message built and encoded. It is safe for concurrent use.
type composer struct {
	e          *Engine
	list       subscribers.List
	ed         digest.Edition
	domain     string // of the From address: Message-IDs and List-Id
	mailto     string // List-Unsubscribe mailto address
	mailtoSubj string // mailto + "?subject=unsubscribe%20": the token follows
	listID     string
	feedbackID string
	// randomIDs gives every message a new random Message-ID instead of
	// the recipient's for the edition (test copies: see messageID).
	randomIDs bool
	// What the recipient's links and return path share (see recipient
	// and returnPath).
	unsubBase, prefsBase  string // BASE/unsubscribe/, BASE/preferences/
	verpLocal, verpDomain string // "local+" and "@domain" of the bounce address
	verpOK                bool   // the bounce address takes a VERP token

	mu     sync.Mutex
	tmpls  map[*render.Prepared]*compiled
	recent []*render.Prepared // in tmpls, oldest first: the eviction order
}

// compiled is a variant's template, compiled once by whichever worker
// needs it first.
type compiled struct {
	once sync.Once
	t    *mailer.Template
	err  error
}

// maxTemplates bounds a composer's templates (one per variant in use);
// past it the oldest is dropped, and compiled again if needed.
const maxTemplates = maxVariants

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
	base := strings.TrimRight(e.BaseURL, "/")
	c := &composer{
		e: e, list: list, ed: ed, domain: domain, mailto: mailto,
		mailtoSubj: mailto + "?subject=" + url.PathEscape("unsubscribe "),
		listID:     fmt.Sprintf("%s <%s.%s>", list.Title, list.Name, domain),
		feedbackID: fmt.Sprintf("%s:%s:newsdigest", ed.ID, list.Name),
		unsubBase:  base + "/unsubscribe/",
		prefsBase:  base + "/preferences/",
	}
	// VERPAddress judges the bounce address and the token's length,
	// which is always VERPTokenLen.
	if _, err := subscribers.VERPAddress(e.BounceAddress, strings.Repeat("a", subscribers.VERPTokenLen)); err == nil {
		local, domain, _ := strings.Cut(e.BounceAddress, "@")
		c.verpLocal, c.verpDomain, c.verpOK = local+"+", "@"+domain, true
	}
	return c, nil
}

// recipient is e.Recipient(c.list, sub), each link built in one
// allocation.
func (c *composer) recipient(sub subscribers.Subscriber) render.Recipient {
	e := c.e
	rc := render.Recipient{Name: sub.Name, Email: sub.Email}
	if e.Signer != nil && sub.ID != "" {
		var b [256]byte
		rc.UnsubscribeURL = string(e.Signer.AppendSign(append(b[:0], c.unsubBase...), subscribers.PurposeUnsubscribe, sub.ID, c.list.Name, time.Time{}))
		rc.PreferencesURL = string(e.Signer.AppendSign(append(b[:0], c.prefsBase...), subscribers.PurposePreferences, sub.ID, c.list.Name, time.Time{}))
	}
	return rc
}

// returnPath is e.ReturnPath(c.list, c.ed, sub) in one allocation.
func (c *composer) returnPath(sub subscribers.Subscriber) string {
	e := c.e
	if e.BounceAddress == "" {
		return ""
	}
	if e.Signer != nil && c.verpOK {
		var b [128]byte
		if out, ok := e.Signer.AppendSignBounce(append(b[:0], c.verpLocal...), sub.ID, c.list.Name, c.ed.Slot); ok {
			return string(append(out, c.verpDomain...))
		}
	}
	return e.BounceAddress
}

// template returns prep's compiled template: the header fields every
// recipient shares, composed by go-mail (mailer.Build and WriteTo, with a
// boundary of its own), and prep's body segments quoted-printable
// encoded.
func (c *composer) template(prep *render.Prepared) (*mailer.Template, error) {
	c.mu.Lock()
	ent := c.tmpls[prep]
	if ent == nil {
		if c.tmpls == nil {
			c.tmpls = make(map[*render.Prepared]*compiled)
		}
		if len(c.recent) >= maxTemplates {
			delete(c.tmpls, c.recent[0])
			c.recent = append(c.recent[:0], c.recent[1:]...)
		}
		ent = &compiled{}
		c.tmpls[prep] = ent
		c.recent = append(c.recent, prep)
	}
	c.mu.Unlock()
	ent.once.Do(func() {
		ent.t, ent.err = mailer.NewTemplate(mailer.Message{
			From:       c.list.From,
			ReplyTo:    c.list.ReplyTo,
			Subject:    prep.Subject,
			ListID:     c.listID,
			FeedbackID: c.feedbackID,
		}, prep.Segments(false), prep.Segments(true))
	})
	return ent.t, ent.err
}

// message composes sub's message from prep into buf (reset first) and
// signs it when the engine has a DKIM key. It returns the envelope and
// the parts to send, in order (a DKIM-Signature field, then the message);
// they point into buf. The message is dated now.
func (c *composer) message(prep *render.Prepared, sub subscribers.Subscriber, buf *bytes.Buffer) (mailer.Envelope, [][]byte, error) {
	e := c.e
	t, err := c.template(prep)
	if err != nil {
		return mailer.Envelope{}, nil, err
	}
	rc := c.recipient(sub)
	v := prep.Values(rc)
	r := mailer.Recipient{
		To:             sub.Email,
		ToName:         sub.Name,
		Date:           e.now(),
		MessageID:      c.messageID(sub),
		UnsubscribeURL: rc.UnsubscribeURL,
		ReturnPath:     c.returnPath(sub),
	}
	if rc.UnsubscribeURL != "" {
		r.UnsubscribeMailto = c.mailtoSubj + url.PathEscape(rc.UnsubscribeURL[strings.LastIndexByte(rc.UnsubscribeURL, '/')+1:])
	}
	buf.Reset()
	out, env, err := t.Append(buf.AvailableBuffer(), &r, &v)
	if err != nil {
		return env, nil, err
	}
	// buf takes the message over: it was appended in buf's free space
	// (or in a larger array, which buf keeps for the next message).
	*buf = *bytes.NewBuffer(out)
	if e.DKIM == nil {
		return env, [][]byte{out}, nil
	}
	sig, err := e.DKIM.Sign(out)
	if err != nil {
		return env, nil, err
	}
	return env, [][]byte{sig, out}, nil
}

// messageID is sub's Message-ID for the composer's edition: 128 bits of
// SHA-256 over the edition's ID and the subscriber's ID (their address
// when they have none), in hex, at the From address's domain. Every copy
// of one edition to one subscriber carries the same Message-ID, so a copy
// sent again after a crash (at most the messages in flight, see Deliver)
// is one receivers can recognise and drop; editions have distinct IDs
// (a forced new edition of a slot gets a suffix), so no two editions
// share one. Test copies (randomIDs) get a new random one each, so that
// a later real copy is not taken for a duplicate of a test.
func (c *composer) messageID(sub subscribers.Subscriber) string {
	if c.randomIDs {
		return mailer.NewMessageID(c.domain)
	}
	var in [160]byte
	b := append(in[:0], c.ed.ID...)
	if sub.ID != "" {
		b = append(append(b, 0, 'i'), sub.ID...)
	} else {
		b = append(append(b, 0, 'e'), sub.Email...)
	}
	sum := sha256.Sum256(b)
	var out [32 + 1 + 253]byte
	hex.Encode(out[:32], sum[:16])
	id := append(append(out[:32], '@'), c.domain...)
	return string(id)
}

// compose builds sub's message from prep as a go-mail message,
// personalizing its bodies into html and text (buffers of an earlier
// message, or nil). It returns the filled buffers: the message refers to
// them until it is encoded, so they may be reused only after that. It is
// the reference path the tests and BenchmarkCompose compare message
// with; the engine sends with message.
func (c *composer) compose(prep *render.Prepared, sub subscribers.Subscriber, html, text []byte) (*mail.Msg, []byte, []byte, error) {
	e := c.e
	rc := e.Recipient(c.list, sub)
	html, text = prep.PersonalizeAppend(rc, html[:0], text[:0])
	var mailtoURL string
	if rc.UnsubscribeURL != "" {
		mailtoURL = c.mailtoSubj + url.PathEscape(rc.UnsubscribeURL[strings.LastIndexByte(rc.UnsubscribeURL, '/')+1:])
	}
	msg, err := mailer.Build(mailer.Message{
		From:              c.list.From,
		ReplyTo:           c.list.ReplyTo,
		To:                sub.Email,
		ToName:            sub.Name,
		Subject:           prep.Subject,
		Date:              e.now(),
		MessageID:         c.messageID(sub),
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

// Message composes sub's copy of ed from prep exactly as Deliver sends
// it, into buf (reset first; the parts point into it), signed when the
// engine has a DKIM key, and returns the envelope and the parts to send,
// in order. Previews, check, dry runs and test copies use it, so that
// what they show is what is sent. Each call compiles prep's template: a
// caller composing many messages of one edition should hold a composer.
func (e *Engine) Message(list subscribers.List, ed digest.Edition, prep *render.Prepared, sub subscribers.Subscriber, buf *bytes.Buffer) (mailer.Envelope, [][]byte, error) {
	c, err := e.newComposer(list, ed)
	if err != nil {
		return mailer.Envelope{}, nil, err
	}
	return c.message(prep, sub, buf)
}
