package boltstore

import (
	"fmt"
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
