// Package mailer builds digest messages with go-mail and sends them over
// SMTP sessions that are reused across messages.
//
// Build refuses any header value holding CR, LF or another control
// character, so nothing from a feed, a form or a CSV file can inject a
// header. Messages are multipart/alternative with the text/plain part first
// and the text/html part last, both quoted-printable UTF-8, and carry the
// List-Unsubscribe (RFC 2369), List-Unsubscribe-Post (RFC 8058), List-Id
// (RFC 2919) and Feedback-ID headers, and no User-Agent or X-Mailer.
//
// A Template is such a message composed by go-mail once for many
// recipients (one edition variant): Template.Append adds one recipient's
// header fields, checked by Build's rules, and their values encoded into
// the bodies, and gives the bytes to sign and send.
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
	if err := checkFields(
		field{"from", m.From}, field{"reply-to", m.ReplyTo}, field{"to", m.To}, field{"to name", m.ToName},
		field{"subject", m.Subject}, field{"message-id", m.MessageID}, field{"list-id", m.ListID},
		field{"unsubscribe URL", m.UnsubscribeURL}, field{"unsubscribe mailto", m.UnsubscribeMailto},
		field{"feedback-id", m.FeedbackID}, field{"return-path", m.ReturnPath}, field{"boundary", m.Boundary},
	); err != nil {
		return nil, err
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
	to, _, err := toAddress(m.To, m.ToName)
	if err != nil {
		return nil, err
	}
	msg.ToMailAddress(to)
	if m.ReplyTo != "" {
		rt, err := mail.ParseAddress(m.ReplyTo)
		if err != nil {
			return nil, fmt.Errorf("mailer: reply-to %q: %v", m.ReplyTo, err)
		}
		msg.ReplyToMailAddress(rt)
	}
	if m.ReturnPath != "" {
		rp, err := bareAddress("return-path", m.ReturnPath)
		if err != nil {
			return nil, err
		}
		msg.EnvelopeFromMailAddress(&mail.Address{Address: rp})
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

	unsub, err := unsubscribeValue(m.UnsubscribeURL, m.UnsubscribeMailto)
	if err != nil {
		return nil, err
	}
	if unsub != "" {
		// Generic (not preformatted) headers: go-mail writes those in a
		// stable, sorted order, which golden files need.
		msg.SetGenHeader(gomail.HeaderListUnsubscribe, unsub)
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

// The checks below are shared by Build and Template.Append: a value is
// judged the same way whether go-mail writes it or a template does.

// checkFields checks every value with checkValue, in order.
func checkFields(fs ...field) error {
	for _, f := range fs {
		if err := checkValue(f.name, f.val); err != nil {
			return err
		}
	}
	return nil
}

type field struct{ name, val string }

// bareAddress checks that v is one address without a display name and
// returns it as net/mail reads it.
func bareAddress(name, v string) (string, error) {
	if isPlainAddress(v) {
		return v, nil // what net/mail would return, without its allocations
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" {
		return "", fmt.Errorf("mailer: %s %q: want a bare address", name, v)
	}
	return a.Address, nil
}

// smtpAddress is addr as go-mail puts it in MAIL FROM and RCPT TO: a
// local part quoted if it needs to be, without angle brackets.
func smtpAddress(addr string) string {
	if isPlainAddress(addr) {
		return addr
	}
	return bare((&mail.Address{Address: addr}).String())
}

// isPlainAddress reports whether s is a dot-atom local part, "@" and a
// dot-atom domain of letters, digits and hyphens: an address net/mail
// parses to itself and formats without quotes.
func isPlainAddress(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	for i, part := range [2]string{s[:at], s[at+1:]} {
		if part[0] == '.' || part[len(part)-1] == '.' || strings.Contains(part, "..") {
			return false
		}
		for j := 0; j < len(part); j++ {
			c := part[j]
			switch {
			case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-':
			case i == 0 && strings.IndexByte("!#$%&'*+/=?^_`{|}~", c) >= 0:
			default:
				return false
			}
		}
	}
	return true
}

// toAddress checks the recipient's bare address and display name, and
// returns the address and the To field's value as go-mail writes it
// (net/mail's formatting), checked against the line limit.
func toAddress(to, name string) (*mail.Address, string, error) {
	addr, v, err := toField(to, name)
	if err != nil {
		return nil, "", err
	}
	return &mail.Address{Name: strings.TrimSpace(name), Address: addr}, v, nil
}

// toField is toAddress returning the bare address as a string.
func toField(to, name string) (addr, value string, err error) {
	addr, err = bareAddress("to", to)
	if err != nil {
		return "", "", err
	}
	a := mail.Address{Name: strings.TrimSpace(name), Address: addr}
	v := formatAddress(&a)
	if !isASCII(a.Name) {
		// An encoded name must read back: net/mail leaves a backslash
		// bare in an encoded word, which no reader then parses.
		if _, err := mail.ParseAddress(v); err != nil {
			return "", "", fmt.Errorf("mailer: to name %q cannot be written as a readable address: %v", name, err)
		}
	}
	if err := checkFolded("To", v); err != nil {
		return "", "", err
	}
	return addr, v, nil
}

// unsubscribeValue checks an unsubscribe URL and mailto (either may be
// empty) and returns the List-Unsubscribe value, "" when both are empty.
func unsubscribeValue(u, mailto string) (string, error) {
	return unsubscribeValueWith(nil, u, mailto)
}

// unsubscribeValueWith is unsubscribeValue remembering in c (if not nil)
// the prefixes of URLs found good, so that the URLs of a send, which
// differ only in their tokens, are parsed once (see urlChecks).
func unsubscribeValueWith(c *urlChecks, u, mailto string) (string, error) {
	if u == "" && mailto == "" {
		return "", nil
	}
	if u != "" {
		if err := c.check(urlUnsubscribe, u); err != nil {
			return "", err
		}
	}
	mt := mailto
	if mailto != "" {
		if len(mt) < 7 || !strings.EqualFold(mt[:7], "mailto:") {
			mt = "mailto:" + mt
		}
		if err := c.check(urlMailto, mt); err != nil {
			return "", fmt.Errorf("mailer: unsubscribe mailto %q: not a mailto URI", mailto)
		}
	}
	var v string
	switch {
	case u == "":
		v = "<" + mt + ">"
	case mt == "":
		v = "<" + u + ">"
	default:
		v = "<" + u + ">, <" + mt + ">"
	}
	if err := checkFolded(string(gomail.HeaderListUnsubscribe), v); err != nil {
		return "", err
	}
	return v, nil
}

// checkValue refuses control characters (CR and LF above all) in a header
// value. Nothing is cleaned silently: a bad value is an error.
func checkValue(name, v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f {
			return checkValueRunes(name, v) // the error, or non-ASCII
		}
	}
	return nil
}

// checkValueRunes is checkValue for values that are not plain ASCII.
func checkValueRunes(name, v string) error {
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
	for len(enc) > 0 {
		w := enc
		if sp := strings.IndexByte(enc, ' '); sp >= 0 {
			w, enc = enc[:sp], enc[sp+1:]
		} else {
			enc = ""
		}
		if len(name)+2+len(w) > maxLine {
			return fmt.Errorf("mailer: %s: a word of %d octets would exceed the %d-octet line limit", name, len(w), maxLine)
		}
	}
	return nil
}

func checkMessageID(id string) error {
	at := strings.LastIndexByte(id, '@')
	if at <= 0 || at == len(id)-1 || strings.ContainsAny(id, "<>()[]\\,;:\" \t") {
		return fmt.Errorf("mailer: message-id %q: want left@domain without brackets or spaces", id)
	}
	if n := len("Message-ID: <>") + len(id); n > maxLine {
		return fmt.Errorf("mailer: Message-ID: %d octets exceed the %d-octet line limit", n, maxLine)
	}
	return nil
}

// checkMailtoURI accepts what unsubscribeValue takes for a mailto URI
// (mt starts with "mailto:"); the caller words the error.
func checkMailtoURI(mt string) error {
	if !isASCII(mt) { // RFC 6068: other characters are percent-encoded
		return errNotMailto
	}
	pu, err := url.Parse(mt)
	if err != nil || pu.Opaque == "" || strings.ContainsAny(mt, " <>,") {
		return errNotMailto
	}
	return nil
}

// isASCII reports whether s holds only ASCII: a URI in List-Unsubscribe
// is written as it is, never as an encoded word.
func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

var errNotMailto = errors.New("mailer: not a mailto URI")

// checkUnsubscribeURL allows https, and http only for loopback hosts used
// by tests and the demo.
func checkUnsubscribeURL(s string) error {
	if !isASCII(s) {
		return fmt.Errorf("mailer: unsubscribe URL %q: not ASCII (percent-encode the path, punycode the host)", s)
	}
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
