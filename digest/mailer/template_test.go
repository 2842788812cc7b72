package mailer

import (
	"bytes"
	"math/rand/v2"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"newsdigest/digest/render"
)

// tmplCase is one recipient of the equivalence tests.
type tmplCase struct {
	name, email, unsub, mailto, prefs string
}

// tmplFixture is a prepared edition and templates compiled from it, with
// and without Reply-To and HTML part.
type tmplFixture struct {
	prep              *render.Prepared
	shared            Message // the fields every recipient shares
	withHTML, noReply *Template
	textOnly          *Template
}

var (
	fixtureOnce sync.Once
	fixture     tmplFixture
	fixtureErr  error
)

func getFixture(t testing.TB) *tmplFixture {
	t.Helper()
	fixtureOnce.Do(func() {
		r, err := render.New("")
		if err != nil {
			fixtureErr = err
			return
		}
		p, err := r.Prepare(fixedView())
		if err != nil {
			fixtureErr = err
			return
		}
		f := &fixture
		f.prep = p
		f.shared = Message{
			From: "The Daily <daily@harbourgazette.example>", ReplyTo: "newsroom@harbourgazette.example",
			Subject: p.Subject, ListID: "The Daily <daily.harbourgazette.example>",
			FeedbackID: "daily-20261127-0600:daily:newsdigest",
		}
		if f.withHTML, fixtureErr = NewTemplate(f.shared, p.Segments(false), p.Segments(true)); fixtureErr != nil {
			return
		}
		noReply := f.shared
		noReply.ReplyTo = ""
		if f.noReply, fixtureErr = NewTemplate(noReply, p.Segments(false), p.Segments(true)); fixtureErr != nil {
			return
		}
		f.textOnly, fixtureErr = NewTemplate(f.shared, p.Segments(false), nil)
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return &fixture
}

var tmplCases = []tmplCase{
	{name: "Reader One", email: "reader1@example.org", unsub: unsubURL, mailto: "unsubscribe@harbourgazette.example?subject=unsubscribe%20tok123", prefs: "https://harbourgazette.example/preferences/tok456"},
	{name: "Zoë Reader", email: "zoe@example.org", unsub: unsubURL, mailto: "mailto:unsubscribe@harbourgazette.example"},
	{name: "李小龍", email: "li@example.cn", unsub: unsubURL},
	{name: "Émile «Le Grand», (chef)", email: "emile@example.fr", unsub: unsubURL},
	{name: `Ann "The Editor" O'Neil`, email: "ann@example.org", unsub: unsubURL},
	{name: "Smith, John <john@evil.example>", email: "john@example.org", unsub: unsubURL},
	{name: "=?utf-8?q?Evil=0D=0ABcc:_x@evil.example?=", email: "evil@example.org", unsub: unsubURL},
	{name: "<script>alert(1)</script> & co", email: "xss@example.org", unsub: unsubURL, prefs: "https://harbourgazette.example/preferences/<x>"},
	{name: "  Padded Name  ", email: "Reader+Tag@Example.ORG", unsub: unsubURL},
	{name: "", email: "noname@example.org", unsub: unsubURL},
	{name: "No Unsubscribe", email: "nounsub@example.org"},
	{name: "Mailto Only", email: "mailto@example.org", mailto: "unsubscribe@harbourgazette.example"},
	{name: "Bad\r\nBcc: victim@example.org", email: "crlf@example.org", unsub: unsubURL},
	{name: "Tab\tName", email: "tab@example.org", unsub: unsubURL},
	{name: "C1\u0085Name", email: "c1@example.org", unsub: unsubURL},
	{name: "Bad UTF-8 \xff", email: "utf8@example.org", unsub: unsubURL},
	{name: "Line\u2028Separator\u00a0NBSP", email: "ls@example.org", unsub: unsubURL},
	{name: "Reader", email: "reader@example.org\r\nBcc: victim@example.org", unsub: unsubURL},
	{name: "Reader", email: "Someone <someone@example.org>", unsub: unsubURL},
	{name: "Reader", email: `"john doe"@example.org`, unsub: unsubURL},
	{name: "Reader", email: "not-an-address", unsub: unsubURL},
	{name: "Reader", email: "a@b@example.org", unsub: unsubURL},
	{name: "Long Email", email: strings.Repeat("l", 64) + "@" + strings.Repeat("sub.", 45) + "example.org", unsub: unsubURL},
	{name: strings.Repeat("Long Name ", 30), email: "longname@example.org", unsub: unsubURL},
	{name: strings.Repeat("Ü", 400), email: "longutf8@example.org", unsub: unsubURL},
	{name: strings.Repeat("x", 1200), email: "longword@example.org", unsub: unsubURL},
	{name: "Long Token", email: "longtok@example.org", unsub: "https://harbourgazette.example/unsubscribe/" + strings.Repeat("t", 300),
		mailto: "unsubscribe@harbourgazette.example?subject=unsubscribe%20" + strings.Repeat("t", 300), prefs: "https://harbourgazette.example/preferences/" + strings.Repeat("p", 300)},
	{name: "Too Long URL", email: "toolong@example.org", unsub: "https://harbourgazette.example/unsubscribe/" + strings.Repeat("t", 1000)},
	{name: "Plain HTTP", email: "http@example.org", unsub: "http://harbourgazette.example/unsubscribe/x"},
	{name: "Loopback", email: "loop@example.org", unsub: "http://127.0.0.1:8080/unsubscribe/x"},
	{name: "JS URL", email: "js@example.org", unsub: "javascript:alert(1)"},
	{name: "Bad Mailto", email: "badmailto@example.org", unsub: unsubURL, mailto: "a b@example.org"},
	{name: "Dot", email: ".starts@example.org", unsub: unsubURL},
	{name: "Trailing space =20 ", email: "space@example.org", unsub: unsubURL, prefs: "https://harbourgazette.example/p?a=1&b= 2"},
}

func (c tmplCase) recipient(date time.Time, id string) (render.Recipient, Recipient) {
	return render.Recipient{Name: c.name, Email: c.email, UnsubscribeURL: c.unsub, PreferencesURL: c.prefs},
		Recipient{
			To: c.email, ToName: c.name, Date: date, MessageID: id,
			UnsubscribeURL: c.unsub, UnsubscribeMailto: c.mailto,
			ReturnPath: "bounces+x@bounce.harbourgazette.example",
		}
}

// bothWays writes c's message with the template and with Build and
// WriteTo from the same prepared edition and fields. Either both refuse
// it, with the same error, or both write it.
func bothWays(t testing.TB, f *tmplFixture, tm *Template, shared Message, html bool, c tmplCase) (tmpl, gomail []byte, env Envelope, err error) {
	t.Helper()
	date := time.Date(2026, 11, 27, 7, 0, 0, 0, time.FixedZone("CET", 3600))
	rc, r := c.recipient(date, "0123456789abcdef0123456789abcdef@harbourgazette.example")
	v := f.prep.Values(rc)
	tmpl, env, terr := tm.Append([]byte("keep:"), &r, &v)
	if !bytes.HasPrefix(tmpl, []byte("keep:")) {
		t.Fatalf("%q: Append did not append", c.name)
	}
	tmpl = tmpl[len("keep:"):]

	m := shared
	m.To, m.ToName, m.Date, m.MessageID = r.To, r.ToName, r.Date, r.MessageID
	m.UnsubscribeURL, m.UnsubscribeMailto, m.ReturnPath = r.UnsubscribeURL, r.UnsubscribeMailto, r.ReturnPath
	h, txt := f.prep.Personalize(rc)
	m.Text = txt
	if html {
		m.HTML = h
	}
	msg, berr := Build(m)
	if (terr == nil) != (berr == nil) || terr != nil && terr.Error() != berr.Error() {
		t.Fatalf("%q <%q>: the template says %v, Build says %v", c.name, c.email, terr, berr)
	}
	if terr != nil {
		if len(tmpl) != 0 {
			t.Fatalf("%q: a refused message appended %d bytes", c.name, len(tmpl))
		}
		return nil, nil, env, terr
	}
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	// The envelope is what Encode gives for Build's message.
	var eb bytes.Buffer
	wantEnv, err := Encode(msg, &eb)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != wantEnv.From || !slices.Equal(env.To, wantEnv.To) || env.MessageID != wantEnv.MessageID {
		t.Fatalf("%q: envelope %+v, Build's %+v", c.name, env, wantEnv)
	}
	return tmpl, b.Bytes(), env, nil
}

// checkWire checks the shape of a message on the wire: CRLF only, no
// line over 998 octets, quoted-printable lines of at most 76.
func checkWire(t testing.TB, raw []byte) {
	t.Helper()
	if bytes.Count(raw, []byte("\r")) != bytes.Count(raw, []byte("\r\n")) || bytes.Count(raw, []byte("\n")) != bytes.Count(raw, []byte("\r\n")) {
		t.Fatalf("bare CR or LF in the message")
	}
	hdrEnd := bytes.Index(raw, []byte("\r\n\r\n"))
	for i, l := range bytes.Split(raw, []byte("\r\n")) {
		if len(l) > maxLine {
			t.Fatalf("line %d has %d octets", i+1, len(l))
		}
	}
	for _, l := range bytes.Split(raw[hdrEnd+4:], []byte("\r\n")) {
		if len(l) > 76 {
			t.Fatalf("body line of %d octets: %q", len(l), l)
		}
	}
}

// sameMessage compares a template's message with Build's: the same header
// fields with the same decoded values, byte for byte the same header block
// once the boundary is swapped, and the same decoded bodies, which are
// the personalized parts with CRLF line ends.
func sameMessage(t testing.TB, f *tmplFixture, c tmplCase, tmpl, gm []byte, html bool) {
	t.Helper()
	checkWire(t, tmpl)
	tp, gp := parse(t, tmpl), parse(t, gm)
	keys := func(h mail.Header) []string {
		var ks []string
		for k, vs := range h {
			for range vs {
				ks = append(ks, k)
			}
		}
		slices.Sort(ks)
		return ks
	}
	tk, gk := keys(tp.msg.Header), keys(gp.msg.Header)
	if !slices.Equal(tk, gk) {
		t.Fatalf("%q: header fields %v, Build's %v", c.name, tk, gk)
	}
	var dec mime.WordDecoder
	for _, k := range tk {
		if k == "Content-Type" {
			continue
		}
		a, err1 := dec.DecodeHeader(tp.msg.Header.Get(k))
		b, err2 := dec.DecodeHeader(gp.msg.Header.Get(k))
		if a != b || err1 != nil || err2 != nil {
			t.Fatalf("%q: %s = %q (%v), Build's %q (%v)", c.name, k, a, err1, b, err2)
		}
	}
	if to, err := tp.msg.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Name != strings.TrimSpace(c.name) {
		t.Fatalf("%q: To reads as %v (%v)", c.name, to, err)
	}
	// The header blocks are identical but for the boundary.
	th := tmpl[:bytes.Index(tmpl, []byte("\r\n\r\n"))]
	gh := gm[:bytes.Index(gm, []byte("\r\n\r\n"))]
	if html {
		th = bytes.ReplaceAll(th, []byte(boundary(t, tp)), []byte(boundary(t, gp)))
	}
	if !bytes.Equal(th, gh) {
		t.Fatalf("%q: header blocks differ:\n%s\n----\n%s", c.name, th, gh)
	}
	if !slices.Equal(tp.types, gp.types) || len(tp.bodies) != len(gp.bodies) {
		t.Fatalf("%q: parts %v, Build's %v", c.name, tp.types, gp.types)
	}
	h, txt := f.prep.Personalize(render.Recipient{Name: c.name, Email: c.email, UnsubscribeURL: c.unsub, PreferencesURL: c.prefs})
	want := [][]byte{crlf(txt)}
	if html {
		want = append(want, crlf(h))
	}
	for i := range tp.bodies {
		if !bytes.Equal(tp.bodies[i], gp.bodies[i]) {
			t.Fatalf("%q: decoded %s differs from Build's", c.name, tp.types[i])
		}
		if !bytes.Equal(tp.bodies[i], want[i]) {
			t.Fatalf("%q: decoded %s differs from Personalize's", c.name, tp.types[i])
		}
	}
}

func crlf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }

func boundary(t testing.TB, p parsed) string {
	_, params, err := mime.ParseMediaType(p.msg.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: %v", p.msg.Header.Get("Content-Type"), err)
	}
	return params["boundary"]
}

func TestTemplateMatchesBuild(t *testing.T) {
	f := getFixture(t)
	refused := 0
	for _, tc := range []struct {
		name   string
		tm     *Template
		shared func(Message) Message
		html   bool
	}{
		{"HTML", f.withHTML, func(m Message) Message { return m }, true},
		{"NoReplyTo", f.noReply, func(m Message) Message { m.ReplyTo = ""; return m }, true},
		{"TextOnly", f.textOnly, func(m Message) Message { return m }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range tmplCases {
				tmpl, gm, _, err := bothWays(t, f, tc.tm, tc.shared(f.shared), tc.html, c)
				if err != nil {
					refused++
					continue
				}
				sameMessage(t, f, c, tmpl, gm, tc.html)
			}
		})
	}
	// The refusals are those of Build, per template: CR LF, tab, C1 and
	// bad UTF-8 in the name; CR LF, a display name, a non-address and two
	// @ in the email; a word too long for a line; a too long or non-https
	// URL; a bad mailto.
	if refused == 0 {
		t.Fatal("no case was refused: the bad values were not checked")
	}
}

// TestTemplateBoundaryPerTemplate: each template has its own random
// boundary, which every message of it shares.
func TestTemplateBoundaryPerTemplate(t *testing.T) {
	f := getFixture(t)
	p := f.prep
	a, err := NewTemplate(f.shared, p.Segments(false), p.Segments(true))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewTemplate(f.shared, p.Segments(false), p.Segments(true))
	if err != nil {
		t.Fatal(err)
	}
	msg := func(tm *Template, email string) string {
		rc, r := tmplCase{name: "R", email: email, unsub: unsubURL}.recipient(time.Now(), "")
		v := p.Values(rc)
		out, env, err := tm.Append(nil, &r, &v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(env.MessageID, "<") || !strings.HasSuffix(env.MessageID, "@harbourgazette.example>") {
			t.Fatalf("a new Message-ID %q is not on the From domain", env.MessageID)
		}
		return boundary(t, parse(t, out))
	}
	if msg(a, "x@example.org") != msg(a, "y@example.org") {
		t.Error("two messages of one template have different boundaries")
	}
	if msg(a, "x@example.org") == msg(b, "x@example.org") {
		t.Error("two templates share a boundary")
	}
}

func TestNewTemplateRefusesRecipientFields(t *testing.T) {
	f := getFixture(t)
	p := f.prep
	for name, mod := range map[string]func(*Message){
		"To": func(m *Message) { m.To = "a@example.org" }, "MessageID": func(m *Message) { m.MessageID = "x@y.example" },
		"Text": func(m *Message) { m.Text = []byte("x") }, "Date": func(m *Message) { m.Date = time.Now() },
	} {
		m := f.shared
		mod(&m)
		if _, err := NewTemplate(m, p.Segments(false), p.Segments(true)); err == nil {
			t.Errorf("%s set in the shared message: no error", name)
		}
	}
	bad := f.shared
	bad.Subject = "Hi\r\nBcc: victim@example.org"
	if _, err := NewTemplate(bad, p.Segments(false), p.Segments(true)); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("a subject with CR LF: %v", err)
	}
	if _, err := NewTemplate(f.shared, [][]byte{[]byte("a\r\nb")}, nil); err == nil {
		t.Error("a segment with CR: no error")
	}
}

// TestTemplateSegmentJoins: segments and values that end mid-line, with
// trailing spaces, tabs, '=' and '.' at every line position, decode to
// the concatenation, and no line of the message starts with '.'.
func TestTemplateSegmentJoins(t *testing.T) {
	var segs [][]byte
	for i := range 80 {
		seg := strings.Repeat("a", i) + []string{" ", "\t", "=", "é", "\n", "", ".", "\n."}[i%8]
		if i%3 == 0 {
			seg = "." + seg
		}
		segs = append(segs, []byte(seg))
	}
	tm, err := NewTemplate(Message{From: "a@example.org", Subject: "s"}, segs, nil)
	if err != nil {
		t.Fatal(err)
	}
	vals := []string{"", " ", "x ", "\t", "=", strings.Repeat("v", 100) + " ", "ü", ".", strings.Repeat("v", 75) + ".."}
	body := joinBody{vals: vals}
	out, _, err := tm.Append(nil, &Recipient{To: "b@example.org"}, body)
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, out)
	// (The message ends mid-line, as its last segment does: only the
	// terminator's line end is added when it is sent.)
	if dotLine(out) {
		i := bytes.Index(out, []byte("\n."))
		t.Fatalf("a line of the message starts with '.': %q", out[max(0, i-200):i+40])
	}
	p := parse(t, out)
	var want []byte
	for i, s := range segs {
		want = append(want, s...)
		if i < len(segs)-1 {
			want = append(want, vals[i%len(vals)]...)
		}
	}
	if got := p.bodies[0]; !bytes.Equal(got, crlf(want)) {
		t.Fatalf("decoded body:\n%q\nwant\n%q", got, crlf(want))
	}
}

// joinBody puts vals[i%len(vals)] after each segment but the last.
type joinBody struct{ vals []string }

func (b joinBody) AppendPart(dst []byte, html bool, lits [][]byte, val func([]byte, string) []byte) []byte {
	for i, l := range lits {
		dst = append(dst, l...)
		if i < len(lits)-1 {
			dst = val(dst, b.vals[i%len(b.vals)])
		}
	}
	return dst
}

// FuzzTemplate: for any name, email and URLs, the template and Build
// accept and refuse the same, their messages decode the same, no value
// adds a header field, and no line of the template's message starts with
// '.' (it is sent without dot-stuffing).
func FuzzTemplate(f *testing.F) {
	for _, c := range tmplCases {
		f.Add(c.name, c.email, c.unsub, c.mailto, c.prefs)
	}
	f.Fuzz(func(t *testing.T, name, email, unsub, mailto, prefs string) {
		fx := getFixture(t)
		c := tmplCase{name: name, email: email, unsub: unsub, mailto: mailto, prefs: prefs}
		tmpl, gm, _, err := bothWays(t, fx, fx.withHTML, fx.shared, true, c)
		if err != nil {
			return
		}
		sameMessage(t, fx, c, tmpl, gm, true)
		if dotLine(tmpl) || !stuffingFree([][]byte{tmpl}) {
			t.Fatal("a line of the template's message starts with '.'")
		}
		want := []string{"Content-Type", "Date", "Feedback-Id", "From", "List-Id", "Message-Id", "Mime-Version", "Reply-To", "Subject", "To"}
		if unsub != "" || mailto != "" {
			want = append(want, "List-Unsubscribe")
		}
		if unsub != "" {
			want = append(want, "List-Unsubscribe-Post")
		}
		slices.Sort(want)
		var got []string
		for k := range parse(t, tmpl).msg.Header {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("header fields %v, want %v", got, want)
		}
	})
}

func BenchmarkTemplate(b *testing.B) {
	f := getFixture(b)
	rc, r := tmplCases[0].recipient(time.Now(), "0123456789abcdef0123456789abcdef@harbourgazette.example")
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		v := f.prep.Values(rc)
		var err error
		if dst, _, err = f.withHTML.Append(dst[:0], &r, &v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(dst)), "wire-bytes")
}

// TestAppendFieldMatchesGoMail: appendField folds as go-mail's own header
// writer does, for values of words of every length, double spaces
// included, under field names of the lengths used.
func TestAppendFieldMatchesGoMail(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 2026))
	for i := range 3000 {
		var words []string
		for range 1 + rng.IntN(12) {
			words = append(words, strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(90)))
		}
		value := strings.Join(words, " ")
		if strings.TrimSpace(value) == "" {
			continue
		}
		key := []string{"To", "Message-ID", "List-Unsubscribe", "X-Field-Name-Of-Some-Length"}[i%4]
		msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
		msg.SetGenHeader(gomail.Header(key), value)
		var b bytes.Buffer
		if _, err := msg.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		raw := b.Bytes()
		at := bytes.Index(raw, []byte("\r\n"+key+": "))
		if bytes.HasPrefix(raw, []byte(key+": ")) {
			at = 0
		} else if at < 0 {
			if at = bytes.Index(raw, []byte("\r\n"+key+":\r\n")); at < 0 {
				t.Fatalf("go-mail wrote no %s field", key)
			}
			at += 2
		} else {
			at += 2
		}
		want := raw[at:fieldEnd(raw, at)]
		if got := appendField(nil, key, value); !bytes.Equal(got, want) {
			t.Fatalf("appendField(%q, %q):\n got %q\nwant %q", key, value, got, want)
		}
		if key == "Message-ID" && !strings.Contains(value, " ") {
			if got := appendMessageIDField(nil, value[1:]); !bytes.Equal(got, appendField(nil, key, "<"+value[1:]+">")) {
				t.Fatalf("appendMessageIDField(%q) = %q", value, got)
			}
		}
	}
}
