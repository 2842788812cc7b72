package delivery_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/digest/lint"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

const postal = "Gazette Ltd, 1 Quay Street, Port Example, EX1 2AB"

// messageEngine is an engine configured like a site (brand with a postal
// address, a mailto for List-Unsubscribe, VERP bounces, a Reply-To) and
// the sent view of a stored edition, prepared.
func messageEngine(t *testing.T) (*fixture, subscribers.List, digest.Edition, *render.Prepared) {
	t.Helper()
	f := setup(t, 3, 1)
	e := f.engine
	e.Brand = render.Brand{SiteName: "The Gazette", SiteURL: "https://gazette.example/", PostalAddress: postal}
	e.UnsubscribeMailto = "unsubscribe@gazette.example"
	e.BounceAddress = "bounces@bounce.gazette.example"
	list, err := f.store.GetList("daily")
	if err != nil {
		t.Fatal(err)
	}
	list.ReplyTo = "newsroom@gazette.example"
	if err := f.store.PutList(list); err != nil {
		t.Fatal(err)
	}
	ed := f.start(t)
	prep, err := e.Renderer.Prepare(e.SentView(list, ed))
	if err != nil {
		t.Fatal(err)
	}
	return f, list, ed, prep
}

// readers are the subscribers of the equivalence test: names a header
// must quote or encode, names it must refuse, addresses plain and not,
// with a signed ID (unsubscribe and preference links) and without.
func readers() []subscribers.Subscriber {
	return []subscribers.Subscriber{
		{ID: "0123456789abcdef", Email: "ann@example.org", Name: "Ann Reader"},
		{ID: "1123456789abcdef", Email: "zoe@example.org", Name: "Zoë «Le Grand», (chef)"},
		{ID: "2123456789abcdef", Email: "li@example.cn", Name: "李小龍"},
		{ID: "3123456789abcdef", Email: "quote@example.org", Name: `Ann "The Editor" O'Neil <ann@evil.example>`},
		{ID: "4123456789abcdef", Email: "enc@example.org", Name: "=?utf-8?q?Bcc:_x@evil.example?="},
		{ID: "5123456789abcdef", Email: "Reader+Tag@Example.ORG", Name: ""},
		{Email: "noid@example.org", Name: "No ID"},
		{ID: "6123456789abcdef", Email: strings.Repeat("l", 64) + "@" + strings.Repeat("sub.", 40) + "example.org", Name: strings.Repeat("Long Name ", 20)},
		{ID: "7123456789abcdef", Email: "crlf@example.org", Name: "Bad\r\nBcc: victim@example.org"},
		{ID: "8123456789abcdef", Email: "inject@example.org\r\nBcc: victim@example.org", Name: "X"},
		{ID: "9123456789abcdef", Email: "Someone <someone@example.org>", Name: "X"},
	}
}

var boundaryRe = regexp.MustCompile(`boundary=([0-9a-zA-Z'()+_,./:=?-]+)`)

// sameBut swaps b's boundary for a's.
func swapBoundary(t *testing.T, a, b []byte) []byte {
	t.Helper()
	ma, mb := boundaryRe.FindSubmatch(a), boundaryRe.FindSubmatch(b)
	if ma == nil || mb == nil {
		t.Fatalf("no boundary in a message")
	}
	return bytes.ReplaceAll(b, mb[1], ma[1])
}

// TestMessageMatchesGoMail: for every reader, Engine.Message gives the
// message go-mail builds (mailer.Build, every header checked, written by
// go-mail) with the same header block byte for byte (but the boundary),
// the same decoded bodies and the same envelope; a value Build refuses is
// refused with the same error.
func TestMessageMatchesGoMail(t *testing.T) {
	f, list, ed, prep := messageEngine(t)
	e := f.engine
	gomail, err := delivery.GoMailComposer(e, list, ed)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, sub := range readers() {
		var tb, gb bytes.Buffer
		env, parts, terr := e.Message(list, ed, prep, sub, &tb)
		genv, gerr := gomail(prep, sub, &gb)
		if (terr == nil) != (gerr == nil) || terr != nil && terr.Error() != gerr.Error() {
			t.Fatalf("%q: Message says %v, go-mail %v", sub.Email, terr, gerr)
		}
		if terr != nil {
			refused++
			continue
		}
		if len(parts) != 1 || !bytes.Equal(parts[0], tb.Bytes()) {
			t.Fatalf("%q: the parts are not the buffer's message", sub.Email)
		}
		got, want := tb.Bytes(), gb.Bytes()
		if fmt.Sprint(env) != fmt.Sprint(genv) {
			t.Fatalf("%q: envelope %+v, go-mail's %+v", sub.Email, env, genv)
		}
		gh := got[:bytes.Index(got, []byte("\r\n\r\n"))]
		wh := swapBoundary(t, got, want[:bytes.Index(want, []byte("\r\n\r\n"))])
		if !bytes.Equal(gh, wh) {
			t.Fatalf("%q: header blocks differ:\n%s\n---\n%s", sub.Email, gh, wh)
		}
		gt, gHTML := bodies(t, got)
		wt, wHTML := bodies(t, want)
		if gt != wt || gHTML != wHTML {
			t.Fatalf("%q: decoded bodies differ from go-mail's", sub.Email)
		}
		// No line starts with '.': the content goes out without a
		// dot-stuffing copy.
		if bytes.HasPrefix(got, []byte(".")) || bytes.Contains(got, []byte("\n.")) {
			t.Fatalf("%q: a line starts with '.'", sub.Email)
		}
		if sub.ID != "" && !strings.Contains(gt, "/newsletter/unsubscribe/") {
			t.Fatalf("%q: no unsubscribe link in the text part", sub.Email)
		}
		for i, l := range bytes.Split(got, []byte("\r\n")) {
			if len(l) > 998 || i > bytes.Count(gh, []byte("\r\n")) && len(l) > 76 {
				t.Fatalf("%q: line %d has %d octets", sub.Email, i+1, len(l))
			}
		}
		if bytes.Count(got, []byte("\n")) != bytes.Count(got, []byte("\r\n")) || bytes.Count(got, []byte("\r")) != bytes.Count(got, []byte("\r\n")) {
			t.Fatalf("%q: bare CR or LF", sub.Email)
		}
	}
	if refused != 3 {
		t.Errorf("%d readers refused, want 3 (CR LF in a name, CR LF in an address, a display name as address)", refused)
	}
}

// TestMessagePassesLint: the engine's message meets section 4 as the
// linter checks it, signed or not.
func TestMessagePassesLint(t *testing.T) {
	f, list, ed, prep := messageEngine(t)
	e := f.engine
	for _, sign := range []bool{false, true} {
		if sign {
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			d, err := mailer.NewDKIM("gazette.example", "nd", key)
			if err != nil {
				t.Fatal(err)
			}
			e.DKIM = d
		}
		// Those with an ID: without one there is no unsubscribe token,
		// hence no link (lint's errors), as before templates.
		for _, sub := range readers()[:6] {
			var buf bytes.Buffer
			_, parts, err := e.Message(list, ed, prep, sub, &buf)
			if err != nil {
				t.Fatal(err)
			}
			r := lint.Check(bytes.Join(parts, nil), lint.Options{PostalAddress: postal})
			if len(r.Findings) > 0 {
				t.Errorf("signed=%v %q: %v", sign, sub.Email, r.Findings)
			}
		}
	}
}

// TestMessageDKIMVerifies: a signature over the template's output
// verifies (go-msgauth), and breaks when a body byte changes.
func TestMessageDKIMVerifies(t *testing.T) {
	f, list, ed, prep := messageEngine(t)
	e := f.engine
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	d, err := mailer.NewDKIM("gazette.example", "nd", key)
	if err != nil {
		t.Fatal(err)
	}
	e.DKIM = d
	record, _ := d.PublicKeyRecord()
	lookup := func(domain string) ([]string, error) {
		if domain != "nd._domainkey.gazette.example" {
			return nil, fmt.Errorf("no TXT record at %s", domain)
		}
		return []string{record}, nil
	}
	for _, sub := range readers()[:7] {
		var buf bytes.Buffer
		_, parts, err := e.Message(list, ed, prep, sub, &buf)
		if err != nil || len(parts) != 2 {
			t.Fatalf("%q: %d parts, %v", sub.Email, len(parts), err)
		}
		raw := bytes.Join(parts, nil)
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Fatalf("%q: %v %v", sub.Email, vs, err)
		}
		hdr := bytes.Index(raw, []byte("\r\n\r\n"))
		bad := append(bytes.Clone(raw[:hdr]), bytes.Replace(raw[hdr:], []byte("Story 0"), []byte("Story O"), 1)...)
		if bytes.Equal(bad, raw) {
			t.Fatal("no story title in the body")
		}
		if vs, _ := dkim.VerifyWithOptions(bytes.NewReader(bad), &dkim.VerifyOptions{LookupTXT: lookup}); len(vs) == 1 && vs[0].Err == nil {
			t.Fatalf("%q: a changed body still verifies", sub.Email)
		}
	}
}

func messageID(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.Header.Get("Message-ID")
}

var idRe = regexp.MustCompile(`^<[0-9a-f]{32}@gazette\.example>$`)

// TestMessageIDPerEditionAndSubscriber: a copy composed again (a send
// resumed after a crash composes anew) has the same Message-ID; another
// subscriber, another edition or a test copy has another.
func TestMessageIDPerEditionAndSubscriber(t *testing.T) {
	f, list, ed, prep := messageEngine(t)
	e := f.engine
	id := func(ed digest.Edition, sub subscribers.Subscriber) string {
		var buf bytes.Buffer
		env, _, err := e.Message(list, ed, prep, sub, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if h := messageID(t, buf.Bytes()); h != env.MessageID || !idRe.MatchString(h) {
			t.Fatalf("Message-ID %q, envelope %q: want <32 hex digits@gazette.example>", h, env.MessageID)
		}
		return env.MessageID
	}
	ann := readers()[0]
	other := ann
	other.ID = "ffffffffffffffff"
	noID := ann
	noID.ID = ""
	forced := ed
	forced.ID += "-2"
	a := id(ed, ann)
	if id(ed, ann) != a {
		t.Error("the same copy composed twice has two Message-IDs")
	}
	seen := map[string]string{a: "first"}
	for what, got := range map[string]string{
		"another subscriber": id(ed, other), "no subscriber ID": id(ed, noID), "a forced new edition": id(forced, ann),
	} {
		if prev, ok := seen[got]; ok {
			t.Errorf("%s has the Message-ID of %s", what, prev)
		}
		seen[got] = what
	}

	// Deliver sends what Message composes: the same bytes (the boundary
	// aside) and so the same Message-IDs, one per recipient.
	stored, err := f.store.GetEdition(ed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e.Deliver(context.Background(), ed.ID); err != nil || res.Sent != 3 {
		t.Fatalf("Deliver: %v, %v", res, err)
	}
	msgs := f.srv.Messages()
	ids := map[string]bool{}
	for _, m := range msgs {
		sub, err := f.store.GetSubscriber(m.To[0])
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, _, err := e.Message(list, stored, prep, sub, &buf); err != nil {
			t.Fatal(err)
		}
		if got := swapBoundary(t, buf.Bytes(), m.Data); !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("%s: Deliver sent other bytes than Message composes", m.To[0])
		}
		ids[messageID(t, m.Data)] = true
	}
	if len(ids) != 3 {
		t.Errorf("%d distinct Message-IDs for 3 recipients", len(ids))
	}

}

// TestTestCopiesGetNewMessageIDs: a test copy is the reader's message but
// for a new random Message-ID each time, so that the reader's real copy
// later is not taken for a duplicate of a test.
func TestTestCopiesGetNewMessageIDs(t *testing.T) {
	f := setup(t, 1, 1)
	e := f.engine
	list, err := f.store.GetList("daily")
	if err != nil {
		t.Fatal(err)
	}
	ann, err := f.store.GetSubscriber(f.emails[0])
	if err != nil {
		t.Fatal(err)
	}
	ed, err := e.Build(list)
	if err != nil {
		t.Fatal(err)
	}
	prep, err := e.Renderer.Prepare(e.View(list, ed))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	env, _, err := e.Message(list, ed, prep, ann, &buf)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{env.MessageID: "the reader's copy"}
	for range 2 {
		if _, err := e.SendTest(context.Background(), "daily", ann.Email); err != nil {
			t.Fatal(err)
		}
	}
	msgs := f.srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d test copies, want 2", len(msgs))
	}
	for i, m := range msgs {
		got := messageID(t, m.Data)
		hm, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		subj, _ := new(mime.WordDecoder).DecodeHeader(hm.Header.Get("Subject"))
		if !strings.HasPrefix(subj, "[TEST] ") || !strings.HasSuffix(got, "@gazette.example>") {
			t.Errorf("test copy %q, Message-ID %s", subj, got)
		}
		if prev := seen[got]; prev != "" {
			t.Errorf("test copy %d has the Message-ID of %s", i+1, prev)
		}
		seen[got] = fmt.Sprint("test copy ", i+1)
	}
}
