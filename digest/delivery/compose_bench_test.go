package delivery_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// BenchmarkCompose measures the per-recipient work of a send, outside SMTP
// and the ledger: the recipient's signed tokens, every header value
// checked, and the message written as it goes on the wire. "gomail" is
// the engine before message templates: the bodies personalized, a go-mail
// message built (mailer.Build) and encoded (mailer.Encode) per message.
// "run" is a Deliver worker's path: the variant's template compiled once
// by the run's composer, then per message the recipient's fields and
// values appended into a reused buffer. "Message" is Engine.Message
// (check, previews, test copies), which compiles the template every call.
// Compare ns/op, allocs/op and B/op (go test -run '^$' -bench Compose
// ./digest/delivery).
func BenchmarkCompose(b *testing.B) {
	r, err := render.New("")
	if err != nil {
		b.Fatal(err)
	}
	signer, err := subscribers.NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		b.Fatal(err)
	}
	e := &delivery.Engine{
		Renderer: r, Signer: signer, Clock: digest.FixedClock(now),
		BaseURL: "https://harbourgazette.example", BounceAddress: "bounces@bounce.harbourgazette.example",
	}
	list := subscribers.List{
		Name: "daily", Title: "The Daily", From: "The Harbour Gazette <digest@harbourgazette.example>",
		ReplyTo: "newsroom@harbourgazette.example", TopCount: 5, RecentCount: 5,
	}
	var sel digest.Selection
	for i := range 10 {
		link := fmt.Sprintf("https://harbourgazette.example/news/%d/story-%d", 2026000+i, i)
		body := fmt.Sprintf("Desk %d reports that the new plans for the quay were discussed at length by residents, traders and the harbour board on Tuesday evening. ", i)
		pk := digest.Pick{Article: digest.Article{
			ID: digest.ArticleID("", link), Link: link, Title: fmt.Sprintf("Story %d: what the new quay plans mean for the town", i),
			SummaryHTML: "<p>" + body + "</p>", SummaryText: body, Author: "Staff", Categories: []string{"Harbour"},
			ImageURL: fmt.Sprintf("https://harbourgazette.example/images/%d.jpg", i), Published: now.Add(-time.Hour),
		}, Section: "top"}
		if i >= 5 {
			pk.Section = "recent"
			sel.Recent = append(sel.Recent, pk)
		} else {
			sel.Top = append(sel.Top, pk)
		}
	}
	ed := digest.Edition{ID: "daily-20261127-0700", List: "daily", Slot: now, Stories: sel, Created: now}
	prep, err := r.Prepare(e.SentView(list, ed))
	if err != nil {
		b.Fatal(err)
	}
	// An ID as the store assigns them: 32 hex digits (signed compactly,
	// and VERP-signed).
	sub := subscribers.Subscriber{ID: "0123456789abcdef0123456789abcdef", Email: "reader0000001@example.org", Name: "Reader 1"}
	var buf bytes.Buffer
	b.Run("gomail", func(b *testing.B) {
		compose, err := delivery.GoMailComposer(e, list, ed)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := compose(prep, sub, &buf); err != nil {
				b.Fatal(err)
			}
		}
		if !strings.Contains(buf.String(), "Reader 1") {
			b.Fatal("the message lacks the recipient")
		}
		b.ReportMetric(float64(buf.Len()), "wire-bytes")
	})
	b.Run("run", func(b *testing.B) {
		compose, err := delivery.RunComposer(e, list, ed)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := compose(prep, sub, &buf); err != nil {
				b.Fatal(err)
			}
		}
		if !strings.Contains(buf.String(), "Reader 1") {
			b.Fatal("the message lacks the recipient")
		}
		b.ReportMetric(float64(buf.Len()), "wire-bytes")
	})
	b.Run("Message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := e.Message(list, ed, prep, sub, &buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "wire-bytes")
	})
}
