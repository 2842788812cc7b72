// Package mailer builds digest messages with go-mail and sends them over
// SMTP sessions that are reused across messages.
//
// Build refuses any header value holding CR, LF or another control
// character, so nothing from a feed, a form or a CSV file can inject a
// header. Messages are multipart/alternative with the text/plain part first
// and the text/html part last, both quoted-printable UTF-8, and carry the
// List-Unsubscribe (RFC 2369), List-Unsubscribe-Post (RFC 8058), List-Id
// (RFC 2919) and Feedback-ID headers, and no User-Agent or X-Mailer.
package mailer

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
)

// Message is one digest email for one recipient.
type Message struct {
	From              string    // "Name <addr>" or "addr": the list's From
	ReplyTo           string    // optional
	To                string    // the recipient's bare address
	ToName            string    // optional display name
	Subject           string    // one line
	Date              time.Time // zero means now
	MessageID         string    // without <>; see NewMessageID; empty means a new one on the From domain
	ListID            string    // e.g. "The Daily <daily.harbourgazette.example>"; optional
	UnsubscribeURL    string    // https URL (http only for localhost); sets List-Unsubscribe and List-Unsubscribe-Post
	UnsubscribeMailto string    // e.g. "unsubscribe@example.org?subject=unsubscribe", with or without "mailto:"; optional
	FeedbackID        string    // e.g. "edition:list:newsdigest"; optional
	ReturnPath        string    // envelope sender (MAIL FROM), e.g. a VERP address; default the From address
	Boundary          string    // fixed MIME boundary, for golden tests; optional
	Text, HTML        []byte    // Text is required; HTML optional
}

// Header names go-mail has no constant for.
const (
	headerListID     gomail.Header = "List-Id"
	headerFeedbackID gomail.Header = "Feedback-ID"
)

// maxLine is the longest line RFC 5322 allows, without CRLF.
const maxLine = 998

// Build turns m into a go-mail message, checking every header value.
func Build(m Message) (*gomail.Msg, error) {
	for _, f := range []struct{ name, val string }{
		{"from", m.From}, {"reply-to", m.ReplyTo}, {"to", m.To}, {"to name", m.ToName},
		{"subject", m.Subject}, {"message-id", m.MessageID}, {"list-id", m.ListID},
		{"unsubscribe URL", m.UnsubscribeURL}, {"unsubscribe mailto", m.UnsubscribeMailto},
		{"feedback-id", m.FeedbackID}, {"return-path", m.ReturnPath}, {"boundary", m.Boundary},
	} {
		if err := checkValue(f.name, f.val); err != nil {
			return nil, err
		}
	}
	if len(m.Text) == 0 {
		return nil, errors.New("mailer: the text part is empty")
	}
	if strings.TrimSpace(m.Subject) == "" {
		return nil, errors.New("mailer: subject is empty")
	}

	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP))

	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return nil, fmt.Errorf("mailer: from %q: %v", m.From, err)
	}
	msg.FromMailAddress(from)
	to, err := mail.ParseAddress(m.To)
	if err != nil || to.Name != "" {
		return nil, fmt.Errorf("mailer: to %q: want a bare address", m.To)
	}
	to.Name = strings.TrimSpace(m.ToName)
	msg.ToMailAddress(to)
	if m.ReplyTo != "" {
		rt, err := mail.ParseAddress(m.ReplyTo)
		if err != nil {
			return nil, fmt.Errorf("mailer: reply-to %q: %v", m.ReplyTo, err)
		}
		msg.ReplyToMailAddress(rt)
	}
	if m.ReturnPath != "" {
		rp, err := mail.ParseAddress(m.ReturnPath)
		if err != nil || rp.Name != "" {
			return nil, fmt.Errorf("mailer: return-path %q: want a bare address", m.ReturnPath)
		}
		msg.EnvelopeFromMailAddress(rp)
	}

	if err := checkFolded("Subject", m.Subject); err != nil {
		return nil, err
	}
	msg.Subject(m.Subject)

	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date)

	id := m.MessageID
	if id == "" {
		id = NewMessageID(domainOf(from.Address))
	}
	if err := checkMessageID(id); err != nil {
		return nil, err
	}
	msg.SetMessageIDWithValue(id)

	var unsub []string
	if m.UnsubscribeURL != "" {
		if err := checkUnsubscribeURL(m.UnsubscribeURL); err != nil {
			return nil, err
		}
		unsub = append(unsub, m.UnsubscribeURL)
	}
	if m.UnsubscribeMailto != "" {
		mt := m.UnsubscribeMailto
		if !strings.HasPrefix(strings.ToLower(mt), "mailto:") {
			mt = "mailto:" + mt
		}
		u, err := url.Parse(mt)
		if err != nil || u.Opaque == "" || strings.ContainsAny(mt, " <>,") {
			return nil, fmt.Errorf("mailer: unsubscribe mailto %q: not a mailto URI", m.UnsubscribeMailto)
		}
		unsub = append(unsub, mt)
	}
	if len(unsub) > 0 {
		// Generic (not preformatted) headers: go-mail writes those in a
		// stable, sorted order, which golden files need.
		v := "<" + strings.Join(unsub, ">, <") + ">"
		if err := checkFolded(string(gomail.HeaderListUnsubscribe), v); err != nil {
			return nil, err
		}
		msg.SetGenHeader(gomail.HeaderListUnsubscribe, v)
		if m.UnsubscribeURL != "" {
			msg.SetGenHeader(gomail.HeaderListUnsubscribePost, "List-Unsubscribe=One-Click")
		}
	}

	if m.ListID != "" {
		v, err := listID(m.ListID)
		if err != nil {
			return nil, err
		}
		if err := checkFolded(string(headerListID), v); err != nil {
			return nil, err
		}
		msg.SetGenHeader(headerListID, v)
	}
	if m.FeedbackID != "" {
		if err := checkFolded(string(headerFeedbackID), m.FeedbackID); err != nil {
			return nil, err
		}
		msg.SetGenHeader(headerFeedbackID, m.FeedbackID)
	}
	if m.Boundary != "" {
		msg.SetBoundary(m.Boundary)
	}

	msg.SetBodyWriter(gomail.TypeTextPlain, writeBytes(m.Text))
	if len(m.HTML) > 0 {
		msg.AddAlternativeWriter(gomail.TypeTextHTML, writeBytes(m.HTML))
	}
	return msg, nil
}

func writeBytes(b []byte) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		n, err := w.Write(b)
		return int64(n), err
	}
}

// checkValue refuses control characters (CR and LF above all) in a header
// value. Nothing is cleaned silently: a bad value is an error.
func checkValue(name, v string) error {
	if i := strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }); i >= 0 {
		return fmt.Errorf("mailer: %s: control character %q at byte %d (CR, LF and other controls are refused in headers)", name, v[i], i)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("mailer: %s: not valid UTF-8", name)
	}
	return nil
}

// checkFolded checks a header that go-mail folds at spaces: after RFC 2047
// encoding, no single word may push a line past 998 octets.
func checkFolded(name, v string) error {
	enc := mime.QEncoding.Encode("UTF-8", v)
	for _, w := range strings.Split(enc, " ") {
		if len(name)+2+len(w) > maxLine {
			return fmt.Errorf("mailer: %s: a word of %d octets would exceed the %d-octet line limit", name, len(w), maxLine)
		}
	}
	return nil
}

// checkUnfolded checks a header that is written on one line.
func checkUnfolded(name, v string) error {
	if n := len(name) + 2 + len(v); n > maxLine {
		return fmt.Errorf("mailer: %s: %d octets exceed the %d-octet line limit", name, n, maxLine)
	}
	return nil
}

func checkMessageID(id string) error {
	at := strings.LastIndexByte(id, '@')
	if at <= 0 || at == len(id)-1 || strings.ContainsAny(id, "<>()[]\\,;:\" \t") {
		return fmt.Errorf("mailer: message-id %q: want left@domain without brackets or spaces", id)
	}
	return checkUnfolded("Message-ID", "<"+id+">")
}

// checkUnsubscribeURL allows https, and http only for loopback hosts used
// by tests and the demo.
func checkUnsubscribeURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("mailer: unsubscribe URL %q: not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return nil
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("mailer: unsubscribe URL %q: must be https (RFC 8058)", s)
}

// listID formats a List-Id value: an optional phrase, encoded when it is
// not plain ASCII, and the <list-id>.
func listID(v string) (string, error) {
	v = strings.TrimSpace(v)
	lt := strings.LastIndexByte(v, '<')
	if lt < 0 || !strings.HasSuffix(v, ">") {
		return "", fmt.Errorf("mailer: list-id %q: want \"Name <label.domain>\"", v)
	}
	id := v[lt+1 : len(v)-1]
	if id == "" || !strings.Contains(id, ".") || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_+", r))
	}) {
		return "", fmt.Errorf("mailer: list-id %q: the part in <> must be a dotted label such as daily.example.org", v)
	}
	phrase := strings.TrimSpace(v[:lt])
	if phrase == "" {
		return "<" + id + ">", nil
	}
	return encodePhrase(phrase) + " <" + id + ">", nil
}

// encodePhrase returns a display-name phrase as RFC 5322 atoms, a quoted
// string, or RFC 2047 encoded words.
func encodePhrase(p string) string {
	atoms, ascii := true, true
	for _, r := range p {
		switch {
		case r >= 0x80:
			ascii, atoms = false, false
		case r == ' ' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r):
		default:
			atoms = false
		}
	}
	switch {
	case atoms:
		return p
	case ascii:
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
	}
	return mime.QEncoding.Encode("UTF-8", p)
}

func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// NewMessageID returns a new Message-ID, without angle brackets: 128
// random bits in hex, "@", and domain (the From address's domain).
func NewMessageID(domain string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("mailer: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return hex.EncodeToString(b[:]) + "@" + domain
}

// WriteEML writes m to dir/name.eml, the dry run of a send. name is
// reduced to the characters [A-Za-z0-9._@-] (others become '_'). The file
// is written to a temporary name and renamed, so a reader never sees half
// a message.
func WriteEML(dir, name string, m *gomail.Msg) (path string, err error) {
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("mailer: writing %s: %w", name, err)
	}
	return WriteEMLBytes(dir, name, buf.Bytes())
}

// WriteEMLBytes is WriteEML for an encoded message: the concatenation of
// parts (e.g. a DKIM-Signature field and the message from Encode).
func WriteEMLBytes(dir, name string, parts ...[]byte) (path string, err error) {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r) {
			return r
		}
		return '_'
	}, name)
	clean = strings.TrimLeft(clean, ".")
	if clean == "" {
		return "", fmt.Errorf("mailer: eml name %q is empty once cleaned", name)
	}
	path = filepath.Join(dir, clean+".eml")
	f, err := os.CreateTemp(dir, ".tmp-"+clean+"-*")
	if err != nil {
		return "", fmt.Errorf("mailer: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	for _, p := range parts {
		if _, err = f.Write(p); err != nil {
			return "", fmt.Errorf("mailer: %w", err)
		}
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("mailer: %w", err)
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return "", fmt.Errorf("mailer: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("mailer: %w", err)
	}
	return path, nil
}
