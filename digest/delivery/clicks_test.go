package delivery_test

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"newsdigest/subscribers"
)

// bodies decodes the text and HTML parts of a multipart/alternative
// message.
func bodies(t *testing.T, raw []byte) (text, html string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return text, html
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			r = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			html = string(b)
		} else {
			text = string(b)
		}
	}
}

var clickRe = regexp.MustCompile(`https://gazette\.example/newsletter/c/([A-Za-z0-9_.-]+)`)

func TestSentStoryLinksGoThroughClickRedirect(t *testing.T) {
	f := setup(t, 2, 1)
	f.engine.TrackClicks = true
	ed := f.start(t)
	if _, err := f.engine.Deliver(context.Background(), ed.ID); err != nil {
		t.Fatal(err)
	}
	msgs := f.srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	signer, _ := subscribers.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	var first []string
	for i, m := range msgs {
		text, html := bodies(t, m.Data)
		for _, part := range []string{text, html} {
			if strings.Contains(part, "https://gazette.example/story/") {
				t.Fatalf("an original story link is left in a tracked email:\n%s", part)
			}
		}
		var tokens []string
		for _, mm := range clickRe.FindAllStringSubmatch(html, -1) {
			tokens = append(tokens, mm[1])
		}
		if len(tokens) < 3 {
			t.Fatalf("message %d: %d click links in the HTML, want one per story at least", i, len(tokens))
		}
		if !strings.Contains(text, "/newsletter/c/") {
			t.Fatalf("no click links in the text part:\n%s", text)
		}
		ids := map[string]bool{}
		for _, tok := range tokens {
			c, err := signer.Verify(subscribers.PurposeClick, tok, time.Now())
			if err != nil || c.List != ed.ID {
				t.Fatalf("token %s: claims %+v, %v; want edition %s", tok, c, err, ed.ID)
			}
			ids[c.Subject] = true
		}
		for _, p := range ed.Stories.Picks() {
			if !ids[p.Article.ID] {
				t.Errorf("no click link for story %s", p.Article.ID)
			}
		}
		// Aggregate tokens: every recipient gets the same links.
		if i == 0 {
			first = tokens
		} else if strings.Join(tokens, " ") != strings.Join(first, " ") {
			t.Errorf("recipients got different click links")
		}
	}
}

func TestTrackingOffLeavesOriginalLinks(t *testing.T) {
	f := setup(t, 1, 1)
	f.engine.TrackClicks = false
	ed := f.start(t)
	if _, err := f.engine.Deliver(context.Background(), ed.ID); err != nil {
		t.Fatal(err)
	}
	text, html := bodies(t, f.srv.Messages()[0].Data)
	for _, part := range []string{text, html} {
		if strings.Contains(part, "/c/") {
			t.Fatalf("a click link with tracking off:\n%s", part)
		}
		for i := range 3 {
			if !strings.Contains(part, "https://gazette.example/story/"+string(rune('0'+i))) {
				t.Fatalf("story %d's own link is missing:\n%s", i, part)
			}
		}
	}
}
