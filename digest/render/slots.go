package render

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"slices"
	"strings"
)

// A marker is markerPrefix + nonce (16 upper-case hex digits, random per
// Prepare, so no feed text can forge one) + one slot letter. Only letters
// and digits: html/template, premailer and HTML serialisation leave it
// alone in text, in attributes and in URLs.
const markerPrefix = "NDSLOT"

type slotKind byte

const (
	slotName      slotKind = 'N'
	slotEmail     slotKind = 'E'
	slotGreeting  slotKind = 'G'
	slotUnsub     slotKind = 'U'
	slotPrefs     slotKind = 'P'
	slotPrefBegin slotKind = 'B'
	slotPrefEnd   slotKind = 'D'
)

func newNonce() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("render: random: %w", err)
	}
	return strings.ToUpper(hex.EncodeToString(b[:])), nil
}

func marker(nonce string, k slotKind) string {
	return markerPrefix + nonce + string(rune(k))
}

func markers(nonce string) RecipientSlots {
	return RecipientSlots{
		Name:             marker(nonce, slotName),
		Email:            marker(nonce, slotEmail),
		Greeting:         marker(nonce, slotGreeting),
		UnsubscribeURL:   marker(nonce, slotUnsub),
		PreferencesURL:   marker(nonce, slotPrefs),
		PreferencesBegin: marker(nonce, slotPrefBegin),
		PreferencesEnd:   marker(nonce, slotPrefEnd),
	}
}

// part is a rendered body cut at its slots: lits[i] is followed by
// slots[i]; the last literal has no slot after it. len(lits) ==
// len(slots)+1.
type part struct {
	lits  [][]byte
	slots []slotKind
	size  int // bytes of the literals
}

// compile cuts s at the markers of nonce. Line ends become LF.
func compile(s, nonce string) (part, error) {
	if strings.IndexByte(s, '\r') >= 0 {
		// Line ends become LF alone: a CR left next to a slot could pair
		// with an LF beyond it or not, depending on the value between,
		// and encoders treat CR LF as one line end.
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	}
	prefix := markerPrefix + nonce
	var p part
	open := false
	for {
		i := strings.Index(s, prefix)
		if i < 0 {
			break
		}
		j := i + len(prefix)
		if j >= len(s) {
			return part{}, fmt.Errorf("truncated slot marker")
		}
		k := slotKind(s[j])
		switch k {
		case slotName, slotEmail, slotGreeting, slotUnsub, slotPrefs:
		case slotPrefBegin:
			if open {
				return part{}, fmt.Errorf("Recipient.PreferencesBegin twice without PreferencesEnd")
			}
			open = true
		case slotPrefEnd:
			if !open {
				return part{}, fmt.Errorf("Recipient.PreferencesEnd without PreferencesBegin (moved by the HTML parser?)")
			}
			open = false
		default:
			return part{}, fmt.Errorf("unknown slot marker %q", s[i:j+1])
		}
		p.lits = append(p.lits, []byte(s[:i]))
		p.slots = append(p.slots, k)
		p.size += i
		s = s[j+1:]
	}
	if open {
		return part{}, fmt.Errorf("Recipient.PreferencesBegin without PreferencesEnd")
	}
	p.lits = append(p.lits, []byte(s))
	p.size += len(s)
	return p, nil
}

// Prepared is one rendered edition variant, ready to be personalized for
// each recipient. It is immutable (but for links it remembers it found
// good) and safe for concurrent use.
type Prepared struct {
	Subject string // one line, shared by every recipient
	html    part
	text    part

	links linkCheck // recipients' links found good, by prefix
}

// HTMLSize is the size in bytes of the inlined HTML without recipient
// values: what section 4 bounds at 100,000 bytes.
func (p *Prepared) HTMLSize() int { return p.html.size }

// TextSize is the size in bytes of the text part without recipient values.
func (p *Prepared) TextSize() int { return p.text.size }

// values are one recipient's slot contents for one part, ready to append.
type values struct {
	name, email, greeting, unsub, prefs string
}

// Values are one recipient's slot contents as Personalize fills them in
// both parts: cleaned of control characters, HTML-escaped in the HTML
// part, URLs that are not absolute http(s) left empty. Values.AppendPart
// lays them out around a Prepared's segments, or around an encoding of
// each segment (a message template quoted-printable encodes the segments
// once and only the values per recipient).
type Values struct {
	p          *Prepared
	html, text values
}

// Values returns rc's slot contents for p.
func (p *Prepared) Values(rc Recipient) Values {
	name := cleanValue(rc.Name)
	email := cleanValue(rc.Email)
	unsub, prefs := rc.UnsubscribeURL, rc.PreferencesURL
	if !p.links.isHTTPURL(unsub) {
		unsub = ""
	}
	if !p.links.isHTTPURL(prefs) {
		prefs = ""
	}
	v := Values{p: p}
	v.text = values{name: name, email: email, greeting: "Hello,", unsub: unsub, prefs: prefs}
	if name != "" {
		v.text.greeting = "Hi " + name + ","
	}
	v.html = values{
		name:  html.EscapeString(name),
		email: html.EscapeString(email),
		unsub: html.EscapeString(unsub),
		prefs: html.EscapeString(prefs),
	}
	v.html.greeting = "Hello,"
	if name != "" {
		v.html.greeting = "Hi " + v.html.name + ","
	}
	return v
}

// Segments returns the literal segments of the HTML part (html true) or
// of the text part, in order: what every recipient's copy of p shares.
// They belong to p: do not modify them.
func (p *Prepared) Segments(html bool) [][]byte {
	if html {
		return p.html.lits
	}
	return p.text.lits
}

// Personalize fills the slots for rc and returns the HTML and text parts.
// It executes no template and never runs premailer. HTML slots get
// HTML-escaped values; URLs that are not absolute http(s) render as empty;
// text slots get the values as they are, minus control characters.
func (p *Prepared) Personalize(rc Recipient) (htmlPart, textPart []byte) {
	return p.PersonalizeAppend(rc, nil, nil)
}

// PersonalizeAppend is Personalize appending the HTML and text parts to
// htmlDst and textDst (pass buffers of an earlier message, emptied, to
// reuse their memory).
func (p *Prepared) PersonalizeAppend(rc Recipient, htmlDst, textDst []byte) (htmlPart, textPart []byte) {
	v := p.Values(rc)
	htmlDst = slices.Grow(htmlDst, p.html.size+v.html.size())
	textDst = slices.Grow(textDst, p.text.size+v.text.size())
	return v.AppendPart(htmlDst, true, p.html.lits, appendString), v.AppendPart(textDst, false, p.text.lits, appendString)
}

func appendString(dst []byte, s string) []byte { return append(dst, s...) }

// size bounds the bytes the values add to a part (each slot at most twice).
func (v *values) size() int {
	return len(v.greeting) + 2*len(v.unsub) + 2*len(v.prefs) + 2*len(v.name) + 2*len(v.email) + 64
}

// AppendPart appends the HTML part (html true) or the text part of the
// recipient's copy to dst: lits[i] stands for the part's i-th segment
// (Segments(html), or an encoding of each), and val(dst, s) appends each
// slot value s, empty ones included. When the recipient has no
// preferences URL, the values and segments between PreferencesBegin and
// PreferencesEnd are left out. lits must have one entry per segment.
func (v *Values) AppendPart(dst []byte, html bool, lits [][]byte, val func(dst []byte, s string) []byte) []byte {
	pt, vs := &v.p.text, &v.text
	if html {
		pt, vs = &v.p.html, &v.html
	}
	if len(lits) != len(pt.lits) {
		panic(fmt.Sprintf("render: AppendPart: %d segments given for a part of %d", len(lits), len(pt.lits)))
	}
	skipping := false
	for i, k := range pt.slots {
		if !skipping {
			dst = append(dst, lits[i]...)
		}
		switch k {
		case slotPrefBegin:
			skipping = vs.prefs == ""
			continue
		case slotPrefEnd:
			skipping = false
			continue
		}
		if skipping {
			continue
		}
		switch k {
		case slotName:
			dst = val(dst, vs.name)
		case slotEmail:
			dst = val(dst, vs.email)
		case slotGreeting:
			dst = val(dst, vs.greeting)
		case slotUnsub:
			dst = val(dst, vs.unsub)
		case slotPrefs:
			dst = val(dst, vs.prefs)
		}
	}
	return append(dst, lits[len(lits)-1]...)
}

// cleanValue turns control characters (CR, LF, tabs…) into spaces and
// trims the result: recipient values are single-line.
func cleanValue(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s))
}

func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0) || r == '\u2028' || r == '\u2029'
}
