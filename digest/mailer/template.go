package mailer

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Template is a digest message compiled once for many recipients: the
// messages of one edition variant differ only in a few header fields and
// in the recipient's values inside the bodies.
//
// NewTemplate has go-mail compose the whole message once (Build and
// WriteTo, with placeholders where the recipient's fields and the bodies
// go), so go-mail still writes every shared header, the MIME structure,
// the part headers and a random boundary; it then cuts that message at
// the placeholders and quoted-printable encodes the bodies' fixed
// segments once. Append writes one recipient's message: the fixed bytes,
// the recipient's Date, To, Message-ID and List-Unsubscribe fields
// (checked by the same rules as Build, and folded as go-mail folds
// them), and only the recipient's values encoded between the segments.
//
// Segments and values are encoded separately, each from the start of a
// line, and a piece that does not end a line ends with a soft line break
// ("=" CRLF): decoded, the bodies are byte for byte what Build's message
// decodes to; only where the soft breaks fall differs, and a '.' that
// would start an encoded line is written "=2E" (appendQPNoDot), so that
// no line of the message starts with '.': it goes out without
// dot-stuffing (Conn.BeginRaw still checks). A Template is immutable and
// safe for concurrent use.
type Template struct {
	ops    []tmplOp
	text   [][]byte // the text part's segments, encoded
	html   [][]byte // the HTML part's, encoded; nil without an HTML part
	post   []byte   // the List-Unsubscribe-Post field as go-mail wrote it
	from   string   // the From address: the envelope sender by default
	domain string   // the From address's domain: new Message-IDs
	size   int      // bytes of everything but the recipient's fields and values

	// What Append works out once for many messages.
	checks urlChecks // unsubscribe URL and mailto prefixes found good
	date   dateField // the last Date value
}

// tmplOp is one piece of a Template's message, in order: fixed bytes, or
// where a recipient's field or body goes.
type tmplOp struct {
	slot  tmplSlot
	fixed []byte // slotFixed only
}

type tmplSlot uint8

const (
	slotFixed       tmplSlot = iota
	slotDate                 // the Date field
	slotUnsubscribe          // List-Unsubscribe, and List-Unsubscribe-Post with a URL
	slotMessageID            // the Message-ID field
	slotTo                   // the To field
	slotText                 // the text part's body
	slotHTML                 // the HTML part's body
)

// Recipient holds what differs from one recipient's message to the next.
type Recipient struct {
	To                string    // the recipient's bare address
	ToName            string    // optional display name
	Date              time.Time // zero means now
	MessageID         string    // without <>; empty means a new random one on the From domain
	UnsubscribeURL    string    // https (http only for loopback); sets List-Unsubscribe and List-Unsubscribe-Post
	UnsubscribeMailto string    // optional, with or without "mailto:"
	ReturnPath        string    // envelope sender (MAIL FROM); default the From address
}

// Body lays out one recipient's body parts around a Template's encoded
// segments: lits[i] stands for the part's i-th segment and val appends
// each of the recipient's values. *render.Values is one.
type Body interface {
	AppendPart(dst []byte, html bool, lits [][]byte, val func(dst []byte, s string) []byte) []byte
}

// NewTemplate compiles the message every recipient shares: m's From,
// ReplyTo, Subject, ListID, FeedbackID (and Boundary, for tests; by
// default go-mail picks a random one, once per template), checked as
// Build checks them; text and html are the fixed segments of the bodies
// (html nil for a message without an HTML part). m's per-recipient fields
// (To, ToName, Date, MessageID, UnsubscribeURL, UnsubscribeMailto,
// ReturnPath, Text and HTML) must be empty: they come with each Append.
func NewTemplate(m Message, text, html [][]byte) (*Template, error) {
	if m.To != "" || m.ToName != "" || !m.Date.IsZero() || m.MessageID != "" || m.UnsubscribeURL != "" ||
		m.UnsubscribeMailto != "" || m.ReturnPath != "" || m.Text != nil || m.HTML != nil {
		return nil, errors.New("mailer: template: To, ToName, Date, MessageID, the unsubscribe fields, ReturnPath, Text and HTML are per recipient (Recipient and the body segments)")
	}
	if len(text) == 0 {
		return nil, errors.New("mailer: template: the text part has no segments")
	}
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("mailer: template: random: %w", err)
	}
	nonce := hex.EncodeToString(rnd[:])
	// Placeholders go-mail writes as they are: plain ASCII words, so
	// neither quoted nor encoded, and each found exactly once.
	m.To = "ndto" + nonce + "@example.invalid"
	m.MessageID = "ndid" + nonce + "@example.invalid"
	m.UnsubscribeURL = "https://example.invalid/ndunsub" + nonce
	m.UnsubscribeMailto = "ndunsub" + nonce + "@example.invalid"
	m.Date = time.Unix(int64(binary.BigEndian.Uint32(rnd[:4])), 0).UTC()
	textMarker := "NDTEXT" + strings.ToUpper(nonce)
	htmlMarker := "NDHTML" + strings.ToUpper(nonce)
	m.Text = []byte(textMarker)
	hasHTML := len(html) > 1 || len(html) == 1 && len(html[0]) > 0
	if hasHTML {
		m.HTML = []byte(htmlMarker)
	}
	msg, err := Build(m)
	if err != nil {
		return nil, err
	}
	var skel bytes.Buffer
	if _, err := msg.WriteTo(&skel); err != nil {
		return nil, fmt.Errorf("mailer: template: %w", err)
	}
	b := skel.Bytes()
	if bytes.Count(b, []byte("\n")) != bytes.Count(b, []byte("\r\n")) || bytes.Count(b, []byte("\r")) != bytes.Count(b, []byte("\r\n")) {
		return nil, errors.New("mailer: template: bare CR or LF in go-mail's output")
	}
	hdrLen := bytes.Index(b, []byte("\r\n\r\n")) + 2
	if hdrLen < 2 {
		return nil, errors.New("mailer: template: go-mail wrote no header block")
	}
	hdr := b[:hdrLen]

	type cut struct {
		slot       tmplSlot
		start, end int
	}
	var cuts []cut
	// field cuts out the header field holding marker, which must be
	// named name.
	field := func(slot tmplSlot, name, marker string) (int, int, error) {
		i := bytes.Index(hdr, []byte(marker))
		if i < 0 || bytes.LastIndex(hdr, []byte(marker)) != i {
			return 0, 0, fmt.Errorf("mailer: template: go-mail did not write the %s placeholder once", name)
		}
		start := fieldStart(hdr, i)
		end := fieldEnd(hdr, i)
		if !hasFieldName(hdr[start:], name) {
			return 0, 0, fmt.Errorf("mailer: template: the %s placeholder is not in a %s field", name, name)
		}
		cuts = append(cuts, cut{slot, start, end})
		return start, end, nil
	}
	if _, _, err := field(slotDate, "Date", m.Date.Format(time.RFC1123Z)); err != nil {
		return nil, err
	}
	if _, _, err := field(slotTo, "To", m.To); err != nil {
		return nil, err
	}
	if _, _, err := field(slotMessageID, "Message-ID", m.MessageID); err != nil {
		return nil, err
	}
	_, end, err := field(slotUnsubscribe, "List-Unsubscribe", m.UnsubscribeURL)
	if err != nil {
		return nil, err
	}
	// go-mail sorts its fields: List-Unsubscribe-Post comes next. It goes
	// out only with an unsubscribe URL, so it belongs to the recipient's
	// slot, and is kept as go-mail wrote it.
	if !hasFieldName(hdr[end:], "List-Unsubscribe-Post") {
		return nil, errors.New("mailer: template: List-Unsubscribe-Post does not follow List-Unsubscribe")
	}
	postEnd := fieldEnd(hdr, end)
	cuts[len(cuts)-1].end = postEnd
	post := bytes.Clone(hdr[end:postEnd])
	for _, bm := range []struct {
		slot   tmplSlot
		marker string
	}{{slotText, textMarker}, {slotHTML, htmlMarker}} {
		if bm.slot == slotHTML && !hasHTML {
			continue
		}
		// Letters and digits shorter than a line: quoted-printable
		// leaves the marker as it is.
		i := bytes.Index(b[hdrLen:], []byte(bm.marker))
		if i < 0 || bytes.LastIndex(b[hdrLen:], []byte(bm.marker)) != i {
			return nil, errors.New("mailer: template: go-mail did not write a body placeholder once")
		}
		cuts = append(cuts, cut{bm.slot, hdrLen + i, hdrLen + i + len(bm.marker)})
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i].start < cuts[j].start })

	t := &Template{post: post}
	from, err := msg.GetSender(false)
	if err != nil {
		return nil, fmt.Errorf("mailer: template: envelope sender: %w", err)
	}
	t.from = bare(from)
	t.domain = domainOf(t.from)
	last := 0
	fixed := func(p []byte) {
		if len(p) > 0 {
			t.ops = append(t.ops, tmplOp{fixed: bytes.Clone(p)})
			t.size += len(p)
		}
	}
	for _, c := range cuts {
		if c.start < last {
			return nil, errors.New("mailer: template: placeholders overlap")
		}
		fixed(b[last:c.start])
		t.ops = append(t.ops, tmplOp{slot: c.slot})
		last = c.end
	}
	fixed(b[last:])
	for _, op := range t.ops {
		if bytes.Contains(op.fixed, []byte(nonce)) || bytes.Contains(op.fixed, []byte(strings.ToUpper(nonce))) {
			return nil, errors.New("mailer: template: a placeholder was left in the message")
		}
	}
	if bytes.Contains(t.post, []byte(nonce)) {
		return nil, errors.New("mailer: template: a placeholder was left in List-Unsubscribe-Post")
	}
	var n int
	if t.text, n, err = encodeSegments(text); err != nil {
		return nil, err
	}
	t.size += n
	if hasHTML {
		if t.html, n, err = encodeSegments(html); err != nil {
			return nil, err
		}
		t.size += n
	}
	return t, nil
}

// fieldStart returns the start of the header field holding hdr[i],
// going back over folded lines.
func fieldStart(hdr []byte, i int) int {
	for {
		i = bytes.LastIndex(hdr[:i], []byte("\r\n")) + 2
		if i < 2 {
			return 0
		}
		if hdr[i] != ' ' && hdr[i] != '\t' {
			return i
		}
		i -= 2
	}
}

// fieldEnd returns the end (after its CRLF) of the header field holding
// hdr[i]: folded lines start with a space or a tab.
func fieldEnd(hdr []byte, i int) int {
	for {
		j := bytes.Index(hdr[i:], []byte("\r\n"))
		if j < 0 {
			return len(hdr)
		}
		i += j + 2
		if i >= len(hdr) || hdr[i] != ' ' && hdr[i] != '\t' {
			return i
		}
	}
}

func hasFieldName(p []byte, name string) bool {
	return len(p) > len(name) && p[len(name)] == ':' && strings.EqualFold(string(p[:len(name)]), name)
}

// softBreak ends an encoded piece that does not end a line.
const softBreak = "=\r\n"

// encodeSegments quoted-printable encodes each segment on its own, from
// the start of a line, ending those that do not end a line (but the last)
// with a soft break, so that any of them can follow any other or a value,
// every one starting a line (which appendQPNoDot needs).
// A segment must not hold a CR (render's parts use LF line ends): CR and
// LF encoded apart would make two line ends of one.
func encodeSegments(segs [][]byte) ([][]byte, int, error) {
	total := 0
	for _, s := range segs {
		if bytes.IndexByte(s, '\r') >= 0 {
			return nil, 0, errors.New("mailer: template: a body segment holds a CR (use LF line ends)")
		}
		total += len(s)
	}
	buf := make([]byte, 0, qpSize(total)+len(softBreak)*len(segs))
	ends := make([]int, len(segs))
	for i, s := range segs {
		buf = appendQPNoDot(buf, s)
		if i < len(segs)-1 && len(s) > 0 && s[len(s)-1] != '\n' {
			buf = append(buf, softBreak...)
		}
		ends[i] = len(buf)
	}
	out := make([][]byte, len(segs))
	start := 0
	for i, end := range ends {
		out[i] = buf[start:end:end]
		start = end
	}
	return out, len(buf), nil
}

// appendQPValue encodes one recipient value between two segments.
func appendQPValue(dst []byte, s string) []byte {
	if s == "" {
		return dst
	}
	dst = appendQPNoDot(dst, s)
	return append(dst, softBreak...)
}

// Append appends r's message to dst, CRLF line ends, ready to be signed
// (DKIM) and sent (Conn.SendRaw), and returns it with its envelope.
// body supplies the recipient's values around the segments t was
// compiled from. A field that Build would refuse is refused here, with
// Build's error; nothing is appended then.
func (t *Template) Append(dst []byte, r *Recipient, body Body) ([]byte, Envelope, error) {
	if err := checkFields(
		field{"to", r.To}, field{"to name", r.ToName}, field{"message-id", r.MessageID},
		field{"unsubscribe URL", r.UnsubscribeURL}, field{"unsubscribe mailto", r.UnsubscribeMailto},
		field{"return-path", r.ReturnPath},
	); err != nil {
		return dst, Envelope{}, err
	}
	to, toValue, err := toField(r.To, r.ToName)
	if err != nil {
		return dst, Envelope{}, err
	}
	// In Build's order, so that a message with several bad values gets
	// Build's error.
	envFrom := t.from
	if r.ReturnPath != "" {
		rp, err := bareAddress("return-path", r.ReturnPath)
		if err != nil {
			return dst, Envelope{}, err
		}
		envFrom = smtpAddress(rp)
	}
	id := r.MessageID
	if id == "" {
		id = NewMessageID(t.domain)
	}
	if err := checkMessageID(id); err != nil {
		return dst, Envelope{}, err
	}
	unsub, err := unsubscribeValueWith(&t.checks, r.UnsubscribeURL, r.UnsubscribeMailto)
	if err != nil {
		return dst, Envelope{}, err
	}
	env := Envelope{From: envFrom, To: []string{smtpAddress(to)}, MessageID: "<" + id + ">"}
	date := r.Date
	if date.IsZero() {
		date = time.Now()
	}

	start := len(dst)
	// The values rarely add more than a kilobyte, encoded.
	dst = slices.Grow(dst, t.size+1024+len(toValue)+len(id)+len(unsub)+len(t.post))
	for _, op := range t.ops {
		switch op.slot {
		case slotFixed:
			dst = append(dst, op.fixed...)
		case slotDate:
			// go-mail's SetDateWithValue format, one short line.
			dst = append(dst, "Date: "...)
			dst = t.date.appendDate(dst, date)
			dst = append(dst, "\r\n"...)
		case slotUnsubscribe:
			if unsub != "" {
				dst = appendField(dst, "List-Unsubscribe", unsub)
				if r.UnsubscribeURL != "" {
					dst = append(dst, t.post...)
				}
			}
		case slotMessageID:
			dst = appendMessageIDField(dst, id)
		case slotTo:
			dst = appendField(dst, "To", toValue)
		case slotText:
			n := len(dst)
			dst = body.AppendPart(dst, false, t.text, appendQPValue)
			if len(dst) == n {
				return dst[:start], Envelope{}, errors.New("mailer: the text part is empty")
			}
		case slotHTML:
			dst = body.AppendPart(dst, true, t.html, appendQPValue)
		}
	}
	return dst, env, nil
}

// appendField appends "key: value" CRLF folded exactly as go-mail's
// msgWriter.writeHeader folds it: at spaces, a word that would bring the
// line to 76 octets goes to a new line starting with a space, and the
// space before a fold is dropped. value holds no CR or LF (checkValue).
func appendField(dst []byte, key, value string) []byte {
	dst = append(dst, key...)
	dst = append(dst, ": "...)
	room := maxHeaderLength - 2 - len(key) - 2
	for {
		w, rest, more := strings.Cut(value, " ")
		if room-len(w) <= 1 {
			dst = foldLine(dst)
			room = maxHeaderLength - 3
		}
		dst = append(dst, w...)
		room -= len(w)
		if !more {
			return append(dst, '\r', '\n')
		}
		dst = append(dst, ' ')
		room--
		value = rest
	}
}

// appendMessageIDField is appendField(dst, "Message-ID", "<"+id+">")
// without building the value: one word (checkMessageID refuses spaces).
func appendMessageIDField(dst []byte, id string) []byte {
	const key = "Message-ID"
	dst = append(dst, key+": "...)
	if maxHeaderLength-2-len(key)-2-(len(id)+2) <= 1 {
		dst = foldLine(dst)
	}
	dst = append(dst, '<')
	dst = append(dst, id...)
	return append(dst, '>', '\r', '\n')
}

// maxHeaderLength is go-mail's folding width (gomail.MaxHeaderLength).
const maxHeaderLength = 76

// foldLine starts a continuation line, dropping one space before it as
// go-mail does.
func foldLine(dst []byte) []byte {
	if n := len(dst); n > 0 && dst[n-1] == ' ' {
		dst = dst[:n-1]
	}
	return append(dst, '\r', '\n', ' ')
}
