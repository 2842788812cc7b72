// Package bounce reads the mail that comes back: RFC 3464 delivery status
// notifications (DSNs) and RFC 5965 abuse reports (ARF), and turns them
// into per-subscriber events — hard bounce, soft bounce, complaint — that a
// Processor records and acts on (suppression, list status).
//
// Parse never panics and never trusts the report to be well formed: what
// it cannot read is classified Other with a reason, to be kept aside and
// counted by the caller.
package bounce

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"

	"newsdigest/subscribers"
)

// MaxMessageBytes is the largest message Parse reads; the rest is ignored
// (reports put what matters in the first few kilobytes).
const MaxMessageBytes = 4 << 20

// Kind classifies a report or one of its recipients.
type Kind string

// Kinds.
const (
	Hard      Kind = "hard"      // permanent failure: status 5.x.x
	Soft      Kind = "soft"      // temporary failure: status 4.x.x, or action delayed
	Complaint Kind = "complaint" // an abuse report
	Other     Kind = "other"     // anything else: kept aside
)

// Report is what Parse found in one message.
type Report struct {
	// Type is the report-type of the multipart/report ("delivery-status",
	// "feedback-report"), or "" when the message is not a report.
	Type string
	// Recipients holds one entry per recipient the report is about (a DSN
	// may name several; an ARF report names one).
	Recipients []Recipient
	// Tokens are the VERP tokens (unverified) found in the addresses the
	// report was sent to or quotes from the original message, best first.
	Tokens []string
	// Subject of the report message, for logs.
	Subject string
}

// Recipient is one recipient's outcome in a report.
type Recipient struct {
	Kind         Kind
	Email        string // Original-Recipient, else Final-Recipient, else Original-Rcpt-To or the original To; may be ""
	Action       string // DSN Action: failed, delayed, delivered, relayed, expanded
	Status       string // enhanced status code, e.g. "5.1.1"
	Diagnostic   string // Diagnostic-Code, e.g. "smtp; 550 5.1.1 user unknown"
	FeedbackType string // ARF Feedback-Type: abuse, fraud, not-spam, …
}

// Kind returns the most severe kind among the report's recipients
// (complaint, hard, soft, other), or Other when it names none.
func (r *Report) Kind() Kind {
	best := Other
	for _, rc := range r.Recipients {
		if rank(rc.Kind) > rank(best) {
			best = rc.Kind
		}
	}
	return best
}

func rank(k Kind) int {
	switch k {
	case Complaint:
		return 3
	case Hard:
		return 2
	case Soft:
		return 1
	}
	return 0
}

// Errors Parse returns; each leaves a Report that classifies as Other.
var (
	// ErrNotReport is returned for a readable message that is neither a
	// delivery status notification nor a feedback report (an auto-reply,
	// a human answer, spam).
	ErrNotReport = errors.New("bounce: not a delivery status notification or feedback report")
	// ErrMalformed is returned for a message or report that cannot be read.
	ErrMalformed = errors.New("bounce: malformed message")
)

// Parse reads one message. envelopeTo are the addresses it was delivered
// to (the SMTP RCPT TO of a listener; may be empty), searched first for a
// VERP token. The returned Report is never nil; the error, when not nil,
// wraps ErrNotReport or ErrMalformed and says why.
func Parse(r io.Reader, envelopeTo ...string) (*Report, error) {
	rep := &Report{}
	for _, a := range envelopeTo {
		rep.addToken(a)
	}
	msg, err := mail.ReadMessage(bufio.NewReader(io.LimitReader(r, MaxMessageBytes)))
	if err != nil {
		return rep, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	rep.Subject = decodeHeader(msg.Header.Get("Subject"))
	for _, h := range []string{"X-Original-To", "Delivered-To", "Envelope-To", "To"} {
		for _, v := range msg.Header[h] {
			rep.addTokensIn(v)
		}
	}
	if err := rep.parseEntity(textprotoHeader(msg.Header), msg.Body, 0); err != nil {
		return rep, err
	}
	if rep.Type == "" {
		return rep, ErrNotReport
	}
	if len(rep.Recipients) == 0 {
		return rep, fmt.Errorf("%w: %s report names no recipient", ErrMalformed, rep.Type)
	}
	return rep, nil
}

type header map[string][]string

func textprotoHeader(h mail.Header) header { return header(h) }

func (h header) get(k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// maxDepth bounds nesting: a report is found at the top or inside a
// forwarded or wrapped message, not deeper.
const maxDepth = 4

// parseEntity looks for a multipart/report in one MIME entity.
func (rep *Report) parseEntity(h header, body io.Reader, depth int) error {
	if depth > maxDepth {
		return nil
	}
	ct := h.get("Content-Type")
	if ct == "" {
		return nil // text/plain: not a report
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%w: content-type %q: %v", ErrMalformed, clip(ct), err)
	}
	switch {
	case mt == "multipart/report":
		return rep.parseReport(params, decodeBody(h, body), depth)
	case strings.HasPrefix(mt, "multipart/"):
		// A wrapper (multipart/mixed of a forwarded report): look inside.
		return rep.eachPart(params, decodeBody(h, body), func(ph header, pb io.Reader) error {
			return rep.parseEntity(ph, pb, depth+1)
		})
	case mt == "message/rfc822" && depth > 0:
		m, err := mail.ReadMessage(bufio.NewReader(decodeBody(h, body)))
		if err != nil {
			return nil
		}
		return rep.parseEntity(header(m.Header), m.Body, depth+1)
	}
	return nil
}

func (rep *Report) eachPart(params map[string]string, body io.Reader, fn func(header, io.Reader) error) error {
	boundary := params["boundary"]
	if boundary == "" {
		return fmt.Errorf("%w: multipart without a boundary", ErrMalformed)
	}
	mr := multipart.NewReader(body, boundary)
	for i := 0; ; i++ {
		if i >= 64 {
			return nil // enough parts
		}
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if i > 0 {
				return nil // a truncated tail after what we read
			}
			return fmt.Errorf("%w: multipart: %v", ErrMalformed, err)
		}
		if err := fn(header(p.Header), p); err != nil {
			return err
		}
	}
}

// parseReport reads the parts of a multipart/report.
func (rep *Report) parseReport(params map[string]string, body io.Reader, depth int) error {
	typ := strings.ToLower(params["report-type"])
	if typ != "delivery-status" && typ != "feedback-report" {
		// Some other report (e.g. disposition-notification): not ours.
		return nil
	}
	var status, feedback []fieldGroup
	var original header
	err := rep.eachPart(params, body, func(ph header, pb io.Reader) error {
		mt, _, _ := mime.ParseMediaType(ph.get("Content-Type"))
		switch mt {
		case "message/delivery-status", "message/global-delivery-status":
			status = append(status, readGroups(decodeBody(ph, pb))...)
		case "message/feedback-report":
			feedback = append(feedback, readGroups(decodeBody(ph, pb))...)
		case "message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers":
			raw, _ := io.ReadAll(io.LimitReader(decodeBody(ph, pb), 256<<10))
			if m, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw))); err == nil {
				original = header(m.Header)
			} else if gs := readGroups(bytes.NewReader(raw)); len(gs) > 0 {
				original = header(gs[0])
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	rep.Type = typ
	// Our own return path, quoted in the original message or the report.
	if original != nil {
		for _, k := range []string{"Return-Path", "X-Newsdigest-Return-Path"} {
			for _, v := range original[k] {
				rep.addTokensIn(v)
			}
		}
	}
	switch typ {
	case "delivery-status":
		rep.readDSN(status)
	case "feedback-report":
		rep.readARF(feedback, original)
	}
	return nil
}

// readDSN turns delivery-status field groups into recipients: the first
// group is per message, the others per recipient (RFC 3464 §2.1).
func (rep *Report) readDSN(groups []fieldGroup) {
	for _, g := range groups {
		if g.get("Final-Recipient") == "" && g.get("Original-Recipient") == "" && g.get("Action") == "" {
			continue // per-message fields
		}
		rc := Recipient{
			Action:     strings.ToLower(strings.TrimSpace(g.get("Action"))),
			Diagnostic: clip(strings.TrimSpace(g.get("Diagnostic-Code"))),
			Email:      addressOf(g.get("Original-Recipient")),
		}
		if rc.Email == "" {
			rc.Email = addressOf(g.get("Final-Recipient"))
		}
		rc.Status = statusCode(g.get("Status"))
		if rc.Status == "" {
			rc.Status = statusCode(rc.Diagnostic)
		}
		rc.Kind = classify(rc.Action, rc.Status, rc.Diagnostic)
		rep.Recipients = append(rep.Recipients, rc)
	}
}

// readARF turns a feedback report into one recipient.
func (rep *Report) readARF(groups []fieldGroup, original header) {
	if len(groups) == 0 {
		return
	}
	g := groups[0]
	rep.addTokensIn(g.get("Original-Mail-From"))
	ft := strings.ToLower(strings.TrimSpace(g.get("Feedback-Type")))
	rc := Recipient{FeedbackType: clip(ft), Email: addressOf(g.get("Original-Rcpt-To"))}
	if rc.Email == "" && original != nil {
		rc.Email = addressOf(original.get("To"))
	}
	switch ft {
	case "abuse", "fraud", "other":
		rc.Kind = Complaint
	default: // not-spam, virus, auth-failure, or unknown
		rc.Kind = Other
	}
	rep.Recipients = append(rep.Recipients, rc)
}

// classify decides a DSN recipient's kind from its action and status.
func classify(action, status, diagnostic string) Kind {
	switch action {
	case "delivered", "relayed", "expanded":
		return Other
	}
	switch {
	case strings.HasPrefix(status, "5."):
		return Hard
	case strings.HasPrefix(status, "4."):
		return Soft
	case action == "delayed":
		return Soft
	}
	// No enhanced code: fall back on a basic SMTP reply in the diagnostic.
	if m := basicCode.FindStringSubmatch(diagnostic); m != nil {
		switch m[1][0] {
		case '5':
			return Hard
		case '4':
			return Soft
		}
	}
	if action == "failed" {
		return Hard
	}
	return Other
}

var (
	enhancedCode = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)
	basicCode    = regexp.MustCompile(`(?:^|[;\s])([45]\d\d)(?:[\s-]|$)`)
)

// statusCode extracts an enhanced status code ("5.1.1") from s.
func statusCode(s string) string {
	return enhancedCode.FindString(s)
}

// addressOf reads "rfc822; user@example.org" (address-type; address) or a
// bare or bracketed address, and returns the normalized address or "".
func addressOf(v string) string {
	v = strings.TrimSpace(v)
	if typ, rest, ok := strings.Cut(v, ";"); ok && !strings.Contains(typ, "@") {
		v = strings.TrimSpace(rest)
	}
	if a, err := mail.ParseAddress(v); err == nil {
		v = a.Address
	}
	v = strings.Trim(v, "<> ")
	if norm, err := subscribers.NormalizeEmail(v); err == nil {
		return norm
	}
	return ""
}

func (rep *Report) addTokensIn(v string) {
	if v == "" {
		return
	}
	if list, err := mail.ParseAddressList(v); err == nil {
		for _, a := range list {
			rep.addToken(a.Address)
		}
		return
	}
	rep.addToken(v)
}

func (rep *Report) addToken(addr string) {
	tok, ok := subscribers.VERPToken(addr)
	if !ok {
		return
	}
	for _, t := range rep.Tokens {
		if strings.EqualFold(t, tok) {
			return
		}
	}
	if len(rep.Tokens) < 8 {
		rep.Tokens = append(rep.Tokens, tok)
	}
}

// fieldGroup is one block of "Name: value" lines.
type fieldGroup map[string][]string

func (g fieldGroup) get(k string) string {
	if v := g[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// maxGroups bounds the per-recipient blocks read from one report.
const maxGroups = 256

// readGroups reads blocks of header-style fields separated by blank lines,
// tolerantly: continuation lines are unfolded, lines without a colon are
// skipped, names are canonicalized.
func readGroups(r io.Reader) []fieldGroup {
	var groups []fieldGroup
	cur := fieldGroup{}
	var lastKey string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	flush := func() {
		if len(cur) > 0 && len(groups) < maxGroups {
			groups = append(groups, cur)
		}
		cur, lastKey = fieldGroup{}, ""
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && lastKey != "" {
			vs := cur[lastKey]
			if len(vs[len(vs)-1]) < 4096 {
				vs[len(vs)-1] += " " + strings.TrimSpace(line)
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		key := canonicalKey(name)
		if len(cur[key]) < 16 {
			cur[key] = append(cur[key], strings.TrimSpace(value))
		}
		lastKey = key
	}
	flush()
	return groups
}

func canonicalKey(s string) string {
	b := []byte(strings.ToLower(s))
	upper := true
	for i, c := range b {
		if upper && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		upper = c == '-'
	}
	return string(b)
}

// decodeBody undoes a part's Content-Transfer-Encoding.
func decodeBody(h header, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(h.get("Content-Transfer-Encoding"))) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &stripSpace{r: r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// stripSpace drops whitespace (line breaks) from base64 text.
type stripSpace struct{ r io.Reader }

func (s *stripSpace) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		k := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				p[k] = c
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

func decodeHeader(s string) string {
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		s = d
	}
	return clip(s)
}

// clip bounds a value taken from a report and removes control characters,
// so that it is safe in logs and tables.
func clip(s string) string {
	if len(s) > 300 {
		s = s[:300]
	}
	s = strings.ToValidUTF8(s, "?")
	return string(bytes.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, []byte(s)))
}
