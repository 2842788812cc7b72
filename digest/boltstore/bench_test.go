package boltstore

import (
	"fmt"
	"strings"
	"testing"

	"newsdigest/digest"
)

// BenchmarkLedger measures queueing one recipient and recording its
// delivery, in batches of 500 as a sender would.
func BenchmarkLedger(b *testing.B) {
	s, _ := mustOpen(b)
	e := digest.Edition{ID: "daily-bench", List: "daily"}
	if _, err := s.CreateEdition(e); err != nil {
		b.Fatal(err)
	}
	const batch = 500
	emails := make([]string, 0, batch)
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		emails = emails[:0]
		for i := done; i < min(done+batch, b.N); i++ {
			emails = append(emails, fmt.Sprintf("r%09d@example.org", i))
		}
		if _, err := s.QueueDeliveries(e.ID, emails); err != nil {
			b.Fatal(err)
		}
		page, err := s.PendingDeliveries(e.ID, "", batch)
		if err != nil {
			b.Fatal(err)
		}
		for i := range page {
			page[i].Status = digest.DeliverySent
		}
		if err := s.RecordDeliveries(page); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordDeliveries measures only the ledger commit of a sender:
// batches of 256 queued recipients of an edition with 12 stories recorded
// sent (the queueing is outside the timer).
func BenchmarkRecordDeliveries(b *testing.B) {
	s, _ := mustOpen(b)
	e := digest.Edition{ID: "daily-bench", List: "daily", Subject: "The daily digest"}
	for i := range 12 {
		e.Stories.Top = append(e.Stories.Top, digest.Pick{
			Article: digest.Article{
				ID: fmt.Sprintf("a%02d", i), Link: fmt.Sprintf("https://news.example.org/2026/11/27/story-%02d", i),
				Title:       fmt.Sprintf("Story number %d about something that happened today", i),
				SummaryHTML: "<p>" + strings.Repeat("A paragraph of the summary, sanitized. ", 12) + "</p>",
				SummaryText: strings.Repeat("A paragraph of the summary, sanitized. ", 12),
				Categories:  []string{"world", "politics"}, Source: "feed-1",
			},
			Section: digest.SectionTop, Score: 1.5, Reason: "popular",
		})
	}
	if _, err := s.CreateEdition(e); err != nil {
		b.Fatal(err)
	}
	const batch = 256
	emails := make([]string, 0, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		b.StopTimer()
		emails = emails[:0]
		for i := done; i < min(done+batch, b.N); i++ {
			emails = append(emails, fmt.Sprintf("r%09d@example.org", i))
		}
		if _, err := s.QueueDeliveries(e.ID, emails); err != nil {
			b.Fatal(err)
		}
		page, err := s.PendingDeliveries(e.ID, "", batch)
		if err != nil {
			b.Fatal(err)
		}
		for i := range page {
			page[i].Status, page[i].MessageID, page[i].Attempts = digest.DeliverySent, fmt.Sprintf("<%d@news.example.org>", done+i), 1
		}
		b.StartTimer()
		if err := s.RecordDeliveries(page); err != nil {
			b.Fatal(err)
		}
	}
}
