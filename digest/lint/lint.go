// Package lint checks a digest email against section 4 of the brief, from
// the message alone: headers, MIME structure, sizes, and the HTML part's
// images, styles, links and hidden text.
//
// It is pure: Check takes the raw message bytes and returns findings; it
// reads no file, opens no connection and needs no configuration (Options
// only sharpens a few rules when the sender's settings are known). Each
// finding names its rule as "<section> <name>", for example "4.6 img-alt",
// and has a severity: an Error breaks the standard (newsdigest send refuses
// to send), a Warning is a risk worth a look.
package lint

import (
	"fmt"
	"sort"
	"strings"
)

// Severity says how bad a finding is.
type Severity string

const (
	// Error breaks section 4: the message must not be sent as it is.
	Error Severity = "error"
	// Warning is a risk or a likely mistake; sending is still allowed.
	Warning Severity = "warning"
)

// Finding is one broken rule.
type Finding struct {
	Rule     string   `json:"rule"` // e.g. "4.6 img-alt"; one of Rules
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%-7s %s: %s", f.Severity, f.Rule, f.Message)
}

// Options sharpen the rules when the sender's settings are known.
type Options struct {
	// PostalAddress is the sender's configured postal address. When set,
	// both parts must show it; when empty, a footer line that looks like
	// an address is looked for instead (a warning when none is found).
	PostalAddress string
	// System marks a message that is not list mail (a confirmation or a
	// welcome email): the list-only rules (List-Unsubscribe, List-Id,
	// Feedback-ID, unsubscribe link and postal address in the body) are
	// not applied.
	System bool
	// MaxHTMLBytes bounds the decoded HTML part; 0 means 100,000.
	MaxHTMLBytes int
}

// DefaultMaxHTMLBytes is where Gmail starts clipping, with a margin.
const DefaultMaxHTMLBytes = 100_000

// Rule describes one check.
type Rule struct {
	ID      string // "4.6 img-alt"
	Summary string
}

// Rules lists every check, in the order of section 4.
var Rules = []Rule{
	{"4.1 from", "exactly one From header with one address"},
	{"4.1 date", "a Date header that parses"},
	{"4.1 message-id", "one Message-ID <unique@domain> on the From address's domain"},
	{"4.1 subject", "a non-empty Subject"},
	{"4.1 mime-version", "a MIME-Version header"},
	{"4.1 duplicate-header", "no header that may appear once appears twice"},
	{"4.1 line-length", "no line longer than 998 octets"},
	{"4.2 multipart-alternative", "the message is multipart/alternative"},
	{"4.2 part-order", "text/plain is the first part, text/html the last"},
	{"4.2 same-links", "the text and HTML parts carry the same links"},
	{"4.3 list-unsubscribe", "List-Unsubscribe holds an https URL"},
	{"4.3 list-unsubscribe-mailto", "List-Unsubscribe also holds a mailto"},
	{"4.3 list-unsubscribe-post", "List-Unsubscribe-Post: List-Unsubscribe=One-Click"},
	{"4.3 body-unsubscribe", "a visible unsubscribe link in the HTML and the text"},
	{"4.3 postal-address", "the sender's postal address in the body"},
	{"4.4 list-id", "a List-Id header <label.domain>"},
	{"4.4 feedback-id", "a Feedback-ID header"},
	{"4.4 return-path", "a Return-Path, if present, is one VERP address"},
	{"4.4 user-agent", "no User-Agent or X-Mailer naming go-mail"},
	{"4.5 html-size", "decoded HTML under 100,000 bytes"},
	{"4.6 lang", "<html lang> is set"},
	{"4.6 img-alt", "every image has alt text"},
	{"4.6 img-size", "every image has width and height attributes"},
	{"4.6 img-src", "every image src is an absolute https URL"},
	{"4.6 preheader", "a preheader hidden by size and overflow"},
	{"4.6 low-contrast", "no text in a colour (nearly) matching its background"},
	{"4.6 script", "no script element"},
	{"4.6 form", "no form, input, button, select or textarea"},
	{"4.6 embed", "no iframe, object, embed, applet, frame"},
	{"4.6 css-flex", "no flexbox"},
	{"4.6 css-grid", "no CSS grid"},
	{"4.6 css-position", "no CSS position other than static"},
	{"4.6 css-variables", "no CSS custom properties or var()"},
	{"4.6 style-only", "no layout CSS that exists only in <style> (not inlined)"},
	{"4.6 fixed-width", "no fixed width over 600 px outside a media query"},
	{"4.6 link-absolute", "every link is absolute http(s), mailto or tel"},
	{"4.6 link-https", "links use https"},
	{"4.7 header-crlf", "no stray CR, LF or control character in any header"},
	{"4.7 event-handler", "no on* event handler attributes, no javascript: URLs"},
}

// Report is the result of Check.
type Report struct {
	Findings  []Finding `json:"findings"`
	HTMLBytes int       `json:"html_bytes"` // decoded HTML part, 0 if none
	TextBytes int       `json:"text_bytes"` // decoded text part, 0 if none
}

// Errors counts the findings of severity Error.
func (r Report) Errors() int { return r.count(Error) }

// Warnings counts the findings of severity Warning.
func (r Report) Warnings() int { return r.count(Warning) }

func (r Report) count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Has reports whether a finding of rule id is present.
func (r Report) Has(id string) bool {
	for _, f := range r.Findings {
		if f.Rule == id {
			return true
		}
	}
	return false
}

// checker accumulates findings for one message.
type checker struct {
	opt      Options
	findings []Finding
}

func (c *checker) add(rule string, sev Severity, format string, args ...any) {
	c.findings = append(c.findings, Finding{Rule: rule, Severity: sev, Message: fmt.Sprintf(format, args...)})
}

// Check runs every rule on the raw message (RFC 5322, CRLF or LF line
// endings). It never fails: a message that cannot be parsed is reported
// as findings.
func Check(raw []byte, opt Options) Report {
	if opt.MaxHTMLBytes <= 0 {
		opt.MaxHTMLBytes = DefaultMaxHTMLBytes
	}
	c := &checker{opt: opt}
	msg := c.parse(raw)
	rep := Report{}
	if msg != nil {
		c.headers(msg)
		c.structure(msg)
		if msg.html != nil {
			rep.HTMLBytes = len(msg.html)
			c.htmlPart(msg)
		}
		if msg.text != nil {
			rep.TextBytes = len(msg.text)
		}
		c.bothParts(msg)
	}
	sort.SliceStable(c.findings, func(i, j int) bool {
		a, b := c.findings[i], c.findings[j]
		if a.Severity != b.Severity {
			return a.Severity == Error
		}
		return ruleIndex(a.Rule) < ruleIndex(b.Rule)
	})
	rep.Findings = c.findings
	return rep
}

func ruleIndex(id string) int {
	for i, r := range Rules {
		if r.ID == id {
			return i
		}
	}
	return len(Rules)
}

// shorten cuts s for a message.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// list formats up to three items and a count of the rest.
func list(items []string) string {
	const show = 3
	if len(items) <= show {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:show], ", "), len(items)-show)
}
