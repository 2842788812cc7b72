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

// compile cuts s at the markers of nonce.
func compile(s, nonce string) (part, error) {
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
// each recipient. It is immutable and safe for concurrent use.
type Prepared struct {
	Subject string // one line, shared by every recipient
	html    part
	text    part
}

// HTMLSize is the size in bytes of the inlined HTML without recipient
// values: what section 4 bounds at 100,000 bytes.
func (p *Prepared) HTMLSize() int { return p.html.size }

// TextSize is the size in bytes of the text part without recipient values.
func (p *Prepared) TextSize() int { return p.text.size }

// values are one recipient's slot contents, ready to append.
type values struct {
	name, email, greeting, unsub, prefs string
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
	name := cleanValue(rc.Name)
	email := cleanValue(rc.Email)
	unsub, prefs := rc.UnsubscribeURL, rc.PreferencesURL
	if !isHTTPURL(unsub) {
		unsub = ""
	}
	if !isHTTPURL(prefs) {
		prefs = ""
	}
	tv := values{name: name, email: email, greeting: "Hello,", unsub: unsub, prefs: prefs}
	if name != "" {
		tv.greeting = "Hi " + name + ","
	}
	hv := values{
		name:  html.EscapeString(name),
		email: html.EscapeString(email),
		unsub: html.EscapeString(unsub),
		prefs: html.EscapeString(prefs),
	}
	hv.greeting = "Hello,"
	if name != "" {
		hv.greeting = "Hi " + hv.name + ","
	}
	return p.html.fill(htmlDst, &hv), p.text.fill(textDst, &tv)
}

func (pt *part) fill(out []byte, v *values) []byte {
	out = slices.Grow(out, pt.size+len(v.greeting)+2*len(v.unsub)+2*len(v.prefs)+
		2*len(v.name)+2*len(v.email)+64)
	skipping := false
	for i, k := range pt.slots {
		if !skipping {
			out = append(out, pt.lits[i]...)
		}
		switch k {
		case slotPrefBegin:
			skipping = v.prefs == ""
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
			out = append(out, v.name...)
		case slotEmail:
			out = append(out, v.email...)
		case slotGreeting:
			out = append(out, v.greeting...)
		case slotUnsub:
			out = append(out, v.unsub...)
		case slotPrefs:
			out = append(out, v.prefs...)
		}
	}
	return append(out, pt.lits[len(pt.lits)-1]...)
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
