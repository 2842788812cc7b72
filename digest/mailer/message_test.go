package mailer

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

var update = flag.Bool("update", false, "rewrite testdata/digest.golden.eml")

var fixedDate = time.Date(2026, 11, 27, 7, 0, 0, 0, time.FixedZone("CET", 3600))

// fixedEdition is a fixed two-story edition; its rendering does not depend
// on the clock or on randomness.
func fixedView() render.View {
	slot := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	mk := func(i int, title string) digest.Article {
		return digest.Article{
			ID:          digest.ArticleID("", title),
			Link:        "https://harbourgazette.example/news/" + strings.ToLower(strings.ReplaceAll(title, " ", "-")),
			Title:       title,
			SummaryHTML: "<p>" + title + " — the full story, with <em>details</em>.</p>",
			SummaryText: title + " — the full story, with details.",
			ImageURL:    "https://harbourgazette.example/img/" + string(rune('a'+i)) + ".jpg",
			Published:   slot.Add(-time.Duration(i+1) * time.Hour),
		}
	}
	return render.View{
		List: subscribers.List{Name: "daily", Title: "The Daily", From: "The Daily <daily@harbourgazette.example>"},
		Edition: digest.Edition{
			ID: digest.EditionID("daily", slot), List: "daily", Slot: slot,
			Intro: "Good morning from the quay.",
			Stories: digest.Selection{
				Top:    []digest.Pick{{Article: mk(0, "Ferry timetable doubles in spring"), Section: digest.SectionTop}},
				Recent: []digest.Pick{{Article: mk(1, "Café reopens on Dock Road"), Section: digest.SectionRecent}},
			},
		},
		Brand: render.Brand{
			SiteName: "Harbour Gazette", SiteURL: "https://harbourgazette.example/",
			PostalAddress: "Harbour Gazette Ltd\n1 Quay Street, Portsmouth",
		},
		ViewURL: "https://harbourgazette.example/archive/daily-20261127-0600",
	}
}

const unsubURL = "https://harbourgazette.example/unsubscribe/tok123"

func fixedMessage(t testing.TB) Message {
	t.Helper()
	r, err := render.New("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Prepare(fixedView())
	if err != nil {
		t.Fatal(err)
	}
	h, txt := p.Personalize(render.Recipient{
		Name: "Zoë Reader", Email: "zoe@example.org",
		UnsubscribeURL: unsubURL,
		PreferencesURL: "https://harbourgazette.example/preferences/tok456",
	})
	return Message{
		From:              "The Daily <daily@harbourgazette.example>",
		ReplyTo:           "newsroom@harbourgazette.example",
		To:                "zoe@example.org",
		ToName:            "Zoë Reader",
		Subject:           p.Subject,
		Date:              fixedDate,
		MessageID:         "0123456789abcdef0123456789abcdef@harbourgazette.example",
		ListID:            "The Daily <daily.harbourgazette.example>",
		UnsubscribeURL:    unsubURL,
		UnsubscribeMailto: "unsubscribe@harbourgazette.example?subject=unsubscribe",
		FeedbackID:        "daily-20261127-0600:daily:newsdigest",
		ReturnPath:        "bounces+zoe=example.org@harbourgazette.example",
		Boundary:          "ndboundary0123456789",
		Text:              txt,
		HTML:              h,
	}
}

func write(t *testing.T, m Message) []byte {
	t.Helper()
	msg, err := Build(m)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	got := write(t, fixedMessage(t))
	path := filepath.Join("testdata", "digest.golden.eml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("message differs from %s at line %d:\n got: %q\nwant: %q\n(run go test -update if the change is intended)", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("message differs from %s in length: got %d lines, want %d", path, len(gl), len(wl))
	}
}

// parsed is a message taken apart with the standard library only.
type parsed struct {
	msg       *mail.Message
	raw       []byte
	types     []string
	bodies    [][]byte
	mediatype string
}

func parse(t testing.TB, raw []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail: %v", err)
	}
	p := parsed{msg: m, raw: raw}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	p.mediatype = mt
	if !strings.HasPrefix(mt, "multipart/") {
		if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			b, err := io.ReadAll(quotedprintable.NewReader(m.Body))
			if err != nil {
				t.Fatalf("quoted-printable: %v", err)
			}
			p.types, p.bodies = []string{mt}, [][]byte{b}
		}
		return p
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		p.types = append(p.types, ct)
		p.bodies = append(p.bodies, b)
	}
	return p
}

// checkDigest checks the section 4 rules a built digest must satisfy.
func checkDigest(t *testing.T, p parsed, fromDomain string) {
	t.Helper()
	h := p.msg.Header
	if got, want := p.mediatype, "multipart/alternative"; got != want {
		t.Errorf("Content-Type = %s, want %s", got, want)
	}
	if len(p.types) != 2 || p.types[0] != "text/plain" || p.types[1] != "text/html" {
		t.Errorf("parts = %v, want [text/plain text/html]", p.types)
	}
	if n := len(h["From"]); n != 1 {
		t.Errorf("%d From headers, want 1", n)
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	id := h.Get("Message-Id")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@"+fromDomain+">") {
		t.Errorf("Message-ID = %q, want <…@%s>", id, fromDomain)
	}
	lu := h.Get("List-Unsubscribe")
	if !strings.Contains(lu, "<https://") || !strings.Contains(lu, "<mailto:") {
		t.Errorf("List-Unsubscribe = %q, want an https URL and a mailto", lu)
	}
	if got, want := h.Get("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click"; got != want {
		t.Errorf("List-Unsubscribe-Post = %q, want %q", got, want)
	}
	if h.Get("List-Id") == "" || h.Get("Feedback-Id") == "" {
		t.Errorf("List-Id = %q, Feedback-ID = %q: want both", h.Get("List-Id"), h.Get("Feedback-Id"))
	}
	for _, k := range []string{"User-Agent", "X-Mailer"} {
		if v := h.Get(k); v != "" {
			t.Errorf("%s = %q, want none", k, v)
		}
	}
	for k, vs := range h {
		if len(vs) > 1 {
			t.Errorf("header %s appears %d times", k, len(vs))
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(p.raw))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		if l := len(sc.Bytes()); l > 998 {
			t.Errorf("line %d is %d octets, over 998", n, l)
		}
	}
}

func TestBuild(t *testing.T) {
	m := fixedMessage(t)
	p := parse(t, write(t, m))
	checkDigest(t, p, "harbourgazette.example")
	h := p.msg.Header

	t.Run("Headers", func(t *testing.T) {
		for k, want := range map[string]string{
			"List-Unsubscribe": "<" + unsubURL + ">, <mailto:unsubscribe@harbourgazette.example?subject=unsubscribe>",
			"List-Id":          "The Daily <daily.harbourgazette.example>",
			"Feedback-Id":      m.FeedbackID,
			"Message-Id":       "<" + m.MessageID + ">",
			"Reply-To":         "<newsroom@harbourgazette.example>",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		to, err := h.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Name != "Zoë Reader" || to[0].Address != "zoe@example.org" {
			t.Errorf("To = %v (%v), want Zoë Reader <zoe@example.org>", to, err)
		}
		subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
		if err != nil || subj != m.Subject {
			t.Errorf("Subject = %q (%v), want %q", subj, err, m.Subject)
		}
		d, _ := h.Date()
		if !d.Equal(fixedDate) {
			t.Errorf("Date = %v, want %v", d, fixedDate)
		}
		if h.Get("Return-Path") != "" {
			t.Errorf("Return-Path is the receiving MTA's to add, not ours")
		}
	})
	t.Run("Bodies", func(t *testing.T) {
		crlf := func(b []byte) []byte {
			return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		}
		if !bytes.Equal(p.bodies[0], crlf(m.Text)) {
			t.Errorf("text part does not decode to the input")
		}
		if !bytes.Equal(p.bodies[1], crlf(m.HTML)) {
			t.Errorf("HTML part does not decode to the input")
		}
		for i, b := range p.bodies {
			if !bytes.Contains(b, []byte("harbourgazette.example/unsubscribe/tok123")) {
				t.Errorf("part %d lacks the unsubscribe link", i)
			}
		}
	})
	t.Run("Envelope", func(t *testing.T) {
		msg, err := Build(m)
		if err != nil {
			t.Fatal(err)
		}
		from, err := msg.GetSender(false)
		if err != nil || from != "<"+m.ReturnPath+">" {
			t.Errorf("envelope sender = %q (%v), want %q", from, err, m.ReturnPath)
		}
		m2 := m
		m2.ReturnPath = ""
		msg, _ = Build(m2)
		if from, _ := msg.GetSender(false); from != "<daily@harbourgazette.example>" {
			t.Errorf("default envelope sender = %q, want the From address", from)
		}
	})
	t.Run("NewMessageIDWhenEmpty", func(t *testing.T) {
		m2 := m
		m2.MessageID = ""
		p := parse(t, write(t, m2))
		id := p.msg.Header.Get("Message-Id")
		if len(id) != len("<>@harbourgazette.example")+32 || !strings.HasSuffix(id, "@harbourgazette.example>") {
			t.Errorf("generated Message-ID = %q", id)
		}
	})
}

func TestBuildRefusesHeaderInjection(t *testing.T) {
	base := fixedMessage(t)
	cases := map[string]func(*Message){
		"SubjectCRLF":     func(m *Message) { m.Subject = "Hello\r\nBcc: victim@example.org" },
		"SubjectLF":       func(m *Message) { m.Subject = "Hello\nX-Evil: 1" },
		"SubjectNUL":      func(m *Message) { m.Subject = "Hello\x00" },
		"ToNameCRLF":      func(m *Message) { m.ToName = "Zoë\r\nBcc: victim@example.org" },
		"FromCRLF":        func(m *Message) { m.From = "Daily\r\n <daily@harbourgazette.example>" },
		"UnsubscribeCRLF": func(m *Message) { m.UnsubscribeURL = unsubURL + "\r\nX-Evil: 1" },
		"MailtoCRLF":      func(m *Message) { m.UnsubscribeMailto = "u@harbourgazette.example\r\nX-Evil: 1" },
		"ListIDLF":        func(m *Message) { m.ListID = "Daily\n <daily.harbourgazette.example>" },
		"FeedbackIDCR":    func(m *Message) { m.FeedbackID = "a\rb" },
		"MessageIDLF":     func(m *Message) { m.MessageID = "a@b\nX: y" },
		"ReturnPathLF":    func(m *Message) { m.ReturnPath = "b@harbourgazette.example\n" },
		"UnsubscribeHTTP": func(m *Message) { m.UnsubscribeURL = "http://harbourgazette.example/u/1" },
		"UnsubscribeJS":   func(m *Message) { m.UnsubscribeURL = "javascript:alert(1)" },
		"ToWithName":      func(m *Message) { m.To = "Zoe <zoe@example.org>" },
		"MessageIDBrackets": func(m *Message) {
			m.MessageID = "<a@b.example>"
		},
		"LongSubjectWord": func(m *Message) { m.Subject = strings.Repeat("x", 1200) },
		"NoText":          func(m *Message) { m.Text = nil },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			m := base
			mod(&m)
			if msg, err := Build(m); err == nil {
				var b bytes.Buffer
				msg.WriteTo(&b)
				t.Errorf("Build accepted it; headers:\n%s", b.String()[:strings.Index(b.String(), "\r\n\r\n")])
			}
		})
	}
	t.Run("LocalhostHTTPAllowed", func(t *testing.T) {
		m := base
		m.UnsubscribeURL = "http://127.0.0.1:8080/unsubscribe/tok"
		if _, err := Build(m); err != nil {
			t.Errorf("http on loopback: %v", err)
		}
	})
	t.Run("NonASCIIListName", func(t *testing.T) {
		m := base
		m.ListID = "Le Quotidien, édition « matin » <matin.harbourgazette.example>"
		p := parse(t, write(t, m))
		got, err := new(mime.WordDecoder).DecodeHeader(p.msg.Header.Get("List-Id"))
		if err != nil || !strings.HasSuffix(got, "<matin.harbourgazette.example>") || !strings.Contains(got, "« matin »") {
			t.Errorf("List-Id = %q (%v)", got, err)
		}
	})
}

func TestWriteEML(t *testing.T) {
	dir := t.TempDir()
	msg, err := Build(fixedMessage(t))
	if err != nil {
		t.Fatal(err)
	}
	path, err := WriteEML(dir, "000001-zoe@example.org/../x y", msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := path, filepath.Join(dir, "000001-zoe@example.org_.._x_y.eml"); got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkDigest(t, parse(t, b), "harbourgazette.example")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in dir, want 1 (no temporary left)", len(entries))
	}
	if _, err := WriteEML(dir, "...", msg); err == nil {
		t.Errorf("a name that cleans to nothing: want an error")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Host: "smtp.example.org", Port: 587, TLS: "starttls", Username: "u", Password: "p"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		key  string
	}{
		{"NoHost", func(c *Config) { c.Host = "" }, "smtp.host"},
		{"BadPort", func(c *Config) { c.Port = 70000 }, "smtp.port"},
		{"BadTLS", func(c *Config) { c.TLS = "ssl3" }, "smtp.tls"},
		{"ClearPassword", func(c *Config) { c.TLS = "none" }, "smtp.tls"},
		{"NegativeTimeout", func(c *Config) { c.Timeout = -time.Second }, "smtp.timeout"},
		{"HELOSpace", func(c *Config) { c.HELO = "a b" }, "smtp.helo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
				t.Errorf("err = %v, want one starting with %q", err, tc.key+":")
			}
		})
	}
	t.Run("LoopbackClearAllowed", func(t *testing.T) {
		c := Config{Host: "127.0.0.1", Port: 2525, TLS: "none", Username: "u", Password: "p"}
		if err := c.Validate(); err != nil {
			t.Errorf("loopback without TLS: %v", err)
		}
	})
}

func TestNewMessageID(t *testing.T) {
	a, b := NewMessageID("example.org"), NewMessageID("example.org")
	if a == b {
		t.Errorf("two IDs are equal: %s", a)
	}
	if len(a) != 32+len("@example.org") || !strings.HasSuffix(a, "@example.org") {
		t.Errorf("NewMessageID = %q, want 32 hex digits @example.org", a)
	}
	if err := checkMessageID(a); err != nil {
		t.Errorf("checkMessageID(%q): %v", a, err)
	}
}

var _ error = (*SendError)(nil)

func TestSendErrorUnwrap(t *testing.T) {
	inner := errors.New("boom")
	var err error = &SendError{Reply: "x", Err: inner}
	if !errors.Is(err, inner) {
		t.Errorf("SendError does not unwrap")
	}
}
