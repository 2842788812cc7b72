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
// and the ledger: personalize the prepared edition, build the message
// (headers checked by mailer.Build, signed tokens) and encode it as sent.
// "gomail-WriteTo" is Engine.Compose and go-mail's own writer, as the
// engine did before mailer.Encode did the quoted-printable bodies itself;
// "Encode" is Engine.Compose and Engine.Encode (previews, test copies);
// "run" is a Deliver worker's path: per-edition parts worked out once and
// body buffers reused. Compare allocs/op and B/op (go test -run '^$'
// -bench Compose ./digest/delivery).
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
	sub := subscribers.Subscriber{ID: "s0123456789", Email: "reader0000001@example.org", Name: "Reader 1"}
	var buf bytes.Buffer
	b.Run("gomail-WriteTo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			msg, err := e.Compose(list, ed, prep, sub)
			if err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			if _, err := msg.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "wire-bytes")
	})
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			msg, err := e.Compose(list, ed, prep, sub)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := e.Encode(msg, &buf); err != nil {
				b.Fatal(err)
			}
		}
		if !strings.Contains(buf.String(), "Reader 1") {
			b.Fatal("the message lacks the recipient")
		}
		b.ReportMetric(float64(buf.Len()), "wire-bytes")
	})
	want := buf.Len()
	b.Run("run", func(b *testing.B) {
		compose, err := delivery.RunComposer(e, list, ed)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			msg, err := compose(prep, sub)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := e.Encode(msg, &buf); err != nil {
				b.Fatal(err)
			}
		}
		if buf.Len() != want || !strings.Contains(buf.String(), "Reader 1") {
			b.Fatalf("the message differs from Compose's: %d bytes, want %d", buf.Len(), want)
		}
		b.ReportMetric(float64(buf.Len()), "wire-bytes")
	})
}
