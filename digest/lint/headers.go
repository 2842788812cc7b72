package lint

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"
)

// message is a parsed email.
type message struct {
	raw     []byte
	header  mail.Header
	rawHead []string // header lines as written (unfolded lines kept apart), without line endings
	// structure
	mediaType string
	parts     []string // media types of the top-level multipart's parts, in order
	text      []byte   // first text/plain part, decoded; nil if none
	html      []byte   // first text/html part, decoded; nil if none
	fromAddr  string
	htmlScan  *htmlScan // nil until the HTML part is checked
}

// parse splits the message, records the raw header lines and decodes the
// parts. Problems become findings; nil means nothing could be parsed.
func (c *checker) parse(raw []byte) *message {
	m := &message{raw: raw}
	c.lines(raw)
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	sep := 4
	if lf := bytes.Index(raw, []byte("\n\n")); lf >= 0 && (end < 0 || lf < end) {
		end, sep = lf, 2
	}
	if end < 0 {
		c.add("4.2 multipart-alternative", Error, "no blank line between header and body: not an email message")
		return nil
	}
	head := string(raw[:end])
	for _, l := range strings.Split(strings.ReplaceAll(head, "\r\n", "\n"), "\n") {
		m.rawHead = append(m.rawHead, l)
	}
	c.rawHeaders(m.rawHead)
	// net/mail needs a valid header; strip what rawHeaders already
	// reported so that the rest can still be checked.
	var clean bytes.Buffer
	for _, l := range m.rawHead {
		if l == "" || l[0] == ' ' || l[0] == '\t' || validHeaderLine(l) {
			clean.WriteString(l)
			clean.WriteString("\r\n")
		}
	}
	clean.WriteString("\r\n")
	clean.Write(raw[end+sep:])
	msg, err := mail.ReadMessage(&clean)
	if err != nil {
		c.add("4.1 from", Error, "the header cannot be parsed: %v", err)
		return nil
	}
	m.header = msg.Header
	body, _ := io.ReadAll(msg.Body)
	c.mime(m, textproto.MIMEHeader(msg.Header), body, 0)
	return m
}

func validHeaderLine(l string) bool {
	i := strings.IndexByte(l, ':')
	if i <= 0 {
		return false
	}
	for _, r := range l[:i] {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

// lines checks the length of every line of the message.
func (c *checker) lines(raw []byte) {
	var long []string
	n := 0
	for len(raw) > 0 {
		n++
		i := bytes.IndexByte(raw, '\n')
		var l []byte
		if i < 0 {
			l, raw = raw, nil
		} else {
			l, raw = raw[:i], raw[i+1:]
		}
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) > 998 {
			long = append(long, itoa(n)+" ("+itoa(len(l))+" octets)")
		}
	}
	if len(long) > 0 {
		c.add("4.1 line-length", Error, "lines longer than 998 octets: %s", list(long))
	}
}

// rawHeaders checks the header lines as written: every line is a field
// or a continuation, with no stray CR or control character.
func (c *checker) rawHeaders(lines []string) {
	for i, l := range lines {
		if i == 0 && l != "" && (l[0] == ' ' || l[0] == '\t') {
			c.add("4.7 header-crlf", Error, "header line 1 starts with white space")
			continue
		}
		if l == "" {
			continue
		}
		if l[0] != ' ' && l[0] != '\t' && !validHeaderLine(l) {
			c.add("4.7 header-crlf", Error, "header line %d is neither a field nor a continuation (a line break injected into a value?): %q", i+1, shorten(l, 60))
			continue
		}
		if j := strings.IndexFunc(l, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }); j >= 0 {
			c.add("4.7 header-crlf", Error, "header line %d holds control character %q", i+1, l[j])
		}
	}
}

// singleHeaders may appear at most once (RFC 5322 3.6, RFC 2045, RFC 2369,
// RFC 8058, RFC 2919).
var singleHeaders = []string{
	"Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-Id", "In-Reply-To", "References",
	"Subject", "Mime-Version", "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe",
	"List-Unsubscribe-Post", "List-Id", "Feedback-Id", "Return-Path",
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, in io.Reader) (io.Reader, error) {
	return in, nil // any charset: control characters are ASCII
}}

func (c *checker) headers(m *message) {
	h := m.header
	for _, k := range singleHeaders {
		if n := len(h[k]); n > 1 {
			c.add("4.1 duplicate-header", Error, "%s appears %d times", k, n)
		}
	}
	// Encoded words must not decode to line breaks either.
	for k, vs := range h {
		for _, v := range vs {
			if d, err := wordDecoder.DecodeHeader(v); err == nil && d != v &&
				strings.ContainsFunc(d, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
				c.add("4.7 header-crlf", Error, "%s decodes to a value with a control character: %q", k, shorten(d, 60))
			}
		}
	}

	froms := h["From"]
	switch {
	case len(froms) == 0:
		c.add("4.1 from", Error, "no From header")
	default:
		al, err := mail.ParseAddressList(froms[0])
		switch {
		case err != nil:
			c.add("4.1 from", Error, "From %q: %v", shorten(froms[0], 80), err)
		case len(al) != 1:
			c.add("4.1 from", Error, "From has %d addresses, want 1", len(al))
		default:
			m.fromAddr = al[0].Address
		}
	}
	if v := h.Get("Date"); v == "" {
		c.add("4.1 date", Error, "no Date header")
	} else if _, err := mail.ParseDate(v); err != nil {
		c.add("4.1 date", Error, "Date %q: %v", shorten(v, 60), err)
	}
	c.messageID(m)
	if s, _ := wordDecoder.DecodeHeader(h.Get("Subject")); strings.TrimSpace(s) == "" {
		c.add("4.1 subject", Error, "no Subject, or an empty one")
	}
	if h.Get("Mime-Version") == "" {
		c.add("4.1 mime-version", Error, "no MIME-Version header")
	}
	for _, k := range []string{"User-Agent", "X-Mailer"} {
		if v := h.Get(k); strings.Contains(strings.ToLower(v), "go-mail") {
			c.add("4.4 user-agent", Error, "%s: %s names the mailing library", k, shorten(v, 60))
		}
	}
	c.returnPath(m)
	if c.opt.System {
		return
	}
	c.listUnsubscribe(m)
	if v := h.Get("List-Id"); v == "" {
		c.add("4.4 list-id", Error, "no List-Id header")
	} else if lt, gt := strings.LastIndexByte(v, '<'), strings.LastIndexByte(v, '>'); lt < 0 || gt < lt || !strings.Contains(v[lt:gt], ".") {
		c.add("4.4 list-id", Error, "List-Id %q: want \"Name <label.domain>\"", shorten(v, 80))
	}
	if strings.TrimSpace(h.Get("Feedback-Id")) == "" {
		c.add("4.4 feedback-id", Error, "no Feedback-ID header")
	}
}

func (c *checker) messageID(m *message) {
	v := strings.TrimSpace(m.header.Get("Message-Id"))
	if v == "" {
		c.add("4.1 message-id", Error, "no Message-ID header")
		return
	}
	if !strings.HasPrefix(v, "<") || !strings.HasSuffix(v, ">") || strings.Count(v, "@") != 1 || strings.ContainsAny(v[1:len(v)-1], "<> \t") {
		c.add("4.1 message-id", Error, "Message-ID %q: want <unique@domain>", shorten(v, 80))
		return
	}
	left, dom, _ := strings.Cut(v[1:len(v)-1], "@")
	if len(left) < 16 {
		c.add("4.1 message-id", Warning, "Message-ID %q: the part before @ is short (%d characters) to be unique", v, len(left))
	}
	if m.fromAddr != "" {
		fd := strings.ToLower(m.fromAddr[strings.LastIndexByte(m.fromAddr, '@')+1:])
		dom = strings.ToLower(dom)
		if dom != fd && !strings.HasSuffix(dom, "."+fd) {
			c.add("4.1 message-id", Error, "Message-ID domain %s is not the From domain %s", dom, fd)
		}
	}
}

func (c *checker) returnPath(m *message) {
	v := strings.TrimSpace(m.header.Get("Return-Path"))
	if v == "" {
		return
	}
	if v == "<>" {
		c.add("4.4 return-path", Warning, "Return-Path is empty (<>): bounces of this message go nowhere")
		return
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" {
		c.add("4.4 return-path", Error, "Return-Path %q: want one <address>", shorten(v, 80))
		return
	}
	// VERP: the return path carries the recipient, e.g.
	// bounces+ann=example.org@sender.example for ann@example.org.
	to, err := mail.ParseAddressList(m.header.Get("To"))
	if err != nil || len(to) != 1 {
		return
	}
	local := strings.ToLower(a.Address[:strings.LastIndexByte(a.Address, '@')])
	rcpt := strings.ToLower(to[0].Address)
	if !strings.Contains(local, strings.Replace(rcpt, "@", "=", 1)) && !strings.Contains(local, strings.Replace(rcpt, "@", "%", 1)) {
		c.add("4.4 return-path", Warning, "Return-Path %s is not a VERP address for %s (e.g. bounces+%s@…)", a.Address, rcpt, strings.Replace(rcpt, "@", "=", 1))
	}
}

func (c *checker) listUnsubscribe(m *message) {
	h := m.header
	v := h.Get("List-Unsubscribe")
	if v == "" {
		c.add("4.3 list-unsubscribe", Error, "no List-Unsubscribe header")
		c.add("4.3 list-unsubscribe-post", Error, "no List-Unsubscribe header, hence no one-click unsubscribe")
		return
	}
	var https, mailto bool
	var plain []string
	rest := v
	for {
		lt := strings.IndexByte(rest, '<')
		if lt < 0 {
			break
		}
		gt := strings.IndexByte(rest[lt:], '>')
		if gt < 0 {
			c.add("4.3 list-unsubscribe", Error, "List-Unsubscribe %q: a < without >", shorten(v, 80))
			return
		}
		u := strings.TrimSpace(rest[lt+1 : lt+gt])
		rest = rest[lt+gt+1:]
		pu, err := url.Parse(u)
		switch {
		case err != nil:
			c.add("4.3 list-unsubscribe", Error, "List-Unsubscribe URI %q: %v", shorten(u, 80), err)
		case pu.Scheme == "https" && pu.Host != "":
			https = true
		case pu.Scheme == "http" && pu.Host != "":
			plain = append(plain, u)
		case strings.EqualFold(pu.Scheme, "mailto") && pu.Opaque != "":
			mailto = true
		default:
			c.add("4.3 list-unsubscribe", Error, "List-Unsubscribe URI %q is neither https nor mailto", shorten(u, 80))
		}
	}
	if !https {
		if len(plain) > 0 && isLoopbackURL(plain[0]) {
			c.add("4.3 list-unsubscribe", Warning, "List-Unsubscribe URL %s is http on a loopback host: fine for a test, never for real subscribers (set http.base_url to an https URL)", plain[0])
		} else if len(plain) > 0 {
			c.add("4.3 list-unsubscribe", Error, "List-Unsubscribe URL %s is not https (RFC 8058 one-click needs https)", plain[0])
		} else {
			c.add("4.3 list-unsubscribe", Error, "List-Unsubscribe %q has no https URL", shorten(v, 80))
		}
	}
	if !mailto {
		c.add("4.3 list-unsubscribe-mailto", Warning, "List-Unsubscribe has no mailto: some clients only offer unsubscribing by email")
	}
	if got := strings.TrimSpace(h.Get("List-Unsubscribe-Post")); got != "List-Unsubscribe=One-Click" {
		if got == "" {
			c.add("4.3 list-unsubscribe-post", Error, "no List-Unsubscribe-Post header: want List-Unsubscribe=One-Click (RFC 8058)")
		} else {
			c.add("4.3 list-unsubscribe-post", Error, "List-Unsubscribe-Post is %q, want List-Unsubscribe=One-Click", shorten(got, 60))
		}
	}
}

// unsubscribeURL is the https (or http) URL of List-Unsubscribe, if any.
func unsubscribeURL(h mail.Header) string {
	v := h.Get("List-Unsubscribe")
	for {
		lt := strings.IndexByte(v, '<')
		if lt < 0 {
			return ""
		}
		gt := strings.IndexByte(v[lt:], '>')
		if gt < 0 {
			return ""
		}
		u := strings.TrimSpace(v[lt+1 : lt+gt])
		v = v[lt+gt+1:]
		if l := strings.ToLower(u); strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://") {
			return u
		}
	}
}

func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// mime walks the MIME tree and records the structure and the first text
// and HTML parts.
func (c *checker) mime(m *message, h textproto.MIMEHeader, body []byte, depth int) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		c.add("4.2 multipart-alternative", Error, "Content-Type %q: %v", shorten(ct, 80), err)
		return
	}
	if depth == 0 {
		m.mediaType = mt
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth > 5 {
			return
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				c.add("4.2 multipart-alternative", Error, "%s: %v", mt, err)
				break
			}
			b, err := io.ReadAll(p)
			if err != nil {
				c.add("4.2 multipart-alternative", Error, "%s part: %v", mt, err)
				break
			}
			if depth == 0 {
				pmt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
				if pmt == "" {
					pmt = "text/plain"
				}
				m.parts = append(m.parts, pmt)
			}
			c.mime(m, p.Header, b, depth+1)
		}
		return
	}
	if mt != "text/plain" && mt != "text/html" {
		return
	}
	var dec []byte
	switch cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); cte {
	case "quoted-printable":
		dec, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	case "base64":
		dec, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, &noSpace{r: bytes.NewReader(body)}))
	default:
		dec = body
	}
	if err != nil {
		c.add("4.2 multipart-alternative", Error, "%s part: bad transfer encoding: %v", mt, err)
	}
	dec = bytes.ReplaceAll(dec, []byte("\r\n"), []byte("\n"))
	if mt == "text/plain" && m.text == nil {
		m.text = dec
	}
	if mt == "text/html" && m.html == nil {
		m.html = dec
	}
}

// noSpace drops white space from base64 input.
type noSpace struct{ r io.Reader }

func (n *noSpace) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	j := 0
	for _, b := range p[:k] {
		if b != '\r' && b != '\n' && b != ' ' && b != '\t' {
			p[j] = b
			j++
		}
	}
	return j, err
}

func (c *checker) structure(m *message) {
	if m.mediaType != "multipart/alternative" {
		c.add("4.2 multipart-alternative", Error, "the message is %s, want multipart/alternative with a text and an HTML part", m.mediaType)
		if m.text == nil || m.html == nil {
			return
		}
	}
	if len(m.parts) > 0 && (m.parts[0] != "text/plain" || m.parts[len(m.parts)-1] != "text/html") {
		c.add("4.2 part-order", Error, "parts are %s; want text/plain first and text/html last", strings.Join(m.parts, ", "))
	}
	if m.text == nil {
		c.add("4.2 part-order", Error, "no text/plain part")
	}
	if m.html == nil {
		c.add("4.2 part-order", Error, "no text/html part")
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
