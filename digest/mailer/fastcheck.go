package mailer

import (
	"net/mail"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Per-message shortcuts of Template.Append. Each gives exactly what the
// general code gives (tests and fuzz targets compare them); they only
// skip work that the messages of one send repeat.

// urlKind is a kind of URL unsubscribeValueWith checks.
type urlKind uint8

const (
	urlUnsubscribe urlKind = iota // checkUnsubscribeURL
	urlMailto                     // checkMailtoURI
)

// urlChecks remembers, per kind, the last prefix of a good URL whose
// every extension by token characters ([A-Za-z0-9_.-]) is good as well.
// The unsubscribe links of one send are the base URL and a path followed
// by a token (https://news.example/unsubscribe/TOKEN, and the mailto
// …?subject=unsubscribe%20TOKEN): parsed once, not once per message. It
// is safe for concurrent use; a nil *urlChecks remembers nothing.
type urlChecks struct {
	prefix [2]atomic.Pointer[string]
}

// check is checkUnsubscribeURL(s) or checkMailtoURI(s), as k says.
func (c *urlChecks) check(k urlKind, s string) error {
	fn := checkUnsubscribeURL
	if k == urlMailto {
		fn = checkMailtoURI
	}
	if c == nil {
		return fn(s)
	}
	prefix := s[:len(s)-tokenTailLen(s)]
	if p := c.prefix[k].Load(); p != nil && *p == prefix {
		return nil
	}
	if err := fn(s); err != nil {
		return err
	}
	if extendable(k, prefix) {
		p := prefix
		c.prefix[k].Store(&p)
	}
	return nil
}

// tokenTailLen returns the length of the longest suffix of s made of
// token characters.
func tokenTailLen(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0 && isTokenChar(s[i]); i-- {
		n++
	}
	return n
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// extendable reports whether every URL p+t, t of token characters, passes
// k's check. Token characters hold no control character, none of
// " <>,?#%/:@", so appended to a URL whose authority (up to the first '/'
// after "//") ends within p, and with no '?' or '#' in p, they only lengthen
// its path: url.Parse gives the same scheme and host and no error
// (unescaping fails only on a '%' without two hex digits after it, all
// within p). Appended to a mailto URI, they lengthen its query (after a
// '?' in p) or its opaque part, which url.Parse does not check, and never
// empty it.
func extendable(k urlKind, p string) bool {
	switch k {
	case urlUnsubscribe:
		if p == "" || strings.ContainsAny(p, "?#") || checkUnsubscribeURL(p) != nil {
			return false
		}
		u, err := url.Parse(p)
		return err == nil && u.Host != "" && u.Path != ""
	case urlMailto:
		return len(p) > 7 && strings.EqualFold(p[:7], "mailto:") && !strings.Contains(p, "#") && checkMailtoURI(p) == nil
	}
	return false
}

// formatAddress is a.String() (how go-mail writes the To field) without
// its allocations for the common case: an address net/mail leaves as it
// is and a name of printable ASCII, which it quotes.
func formatAddress(a *mail.Address) string {
	if !isPlainAddress(a.Address) {
		return a.String()
	}
	if a.Name == "" {
		return "<" + a.Address + ">"
	}
	n := len(a.Name) + len(a.Address) + 5
	for i := 0; i < len(a.Name); i++ {
		switch c := a.Name[i]; {
		case c == '"' || c == '\\':
			n++
		case c >= '!' && c <= '~' || c == ' ' || c == '\t':
		default:
			return a.String() // encoded (RFC 2047)
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('"')
	for i := 0; i < len(a.Name); i++ {
		if c := a.Name[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(a.Name[i])
	}
	b.WriteString(`" <`)
	b.WriteString(a.Address)
	b.WriteByte('>')
	return b.String()
}

// dateField caches the Date field's value for one second in one time
// zone: the messages of a send are dated a few seconds apart.
type dateField struct {
	last atomic.Pointer[formattedDate]
}

type formattedDate struct {
	unix int64
	loc  *time.Location
	b    []byte
}

// appendDate appends date.AppendFormat(nil, time.RFC1123Z), formatted
// once per second and time zone. Formatting depends only on the instant
// (seconds: the format has no fraction) and the location.
func (f *dateField) appendDate(dst []byte, date time.Time) []byte {
	unix, loc := date.Unix(), date.Location()
	if d := f.last.Load(); d != nil && d.unix == unix && d.loc == loc {
		return append(dst, d.b...)
	}
	d := &formattedDate{unix: unix, loc: loc, b: date.AppendFormat(nil, time.RFC1123Z)}
	f.last.Store(d)
	return append(dst, d.b...)
}
