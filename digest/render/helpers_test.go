package render

import (
	"fmt"
	"time"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

var testSlot = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)

// testView is a fixed edition with top and recent stories.
func testView(top, recent int) View {
	var sel digest.Selection
	for i := range top + recent {
		a := digest.Article{
			ID:          fmt.Sprintf("a%02d", i),
			Link:        fmt.Sprintf("https://news.example/2026/11/story-%02d?utm=x&id=%d", i, i),
			Title:       fmt.Sprintf("Story %02d: harbour council & the \"new\" ferry", i),
			SummaryHTML: fmt.Sprintf(`<p>Summary of story %02d with a <a href="https://news.example/more/%02d">link</a> and <strong>bold</strong> text.</p><img src="http://tracker.example/x.gif"><script>alert(1)</script>`, i, i),
			SummaryText: fmt.Sprintf("Summary of story %02d with a link and bold text.", i),
			ImageURL:    fmt.Sprintf("https://img.news.example/%02d.jpg", i),
			Author:      "Ann Lee",
			Categories:  []string{"Harbour"},
			Published:   testSlot.Add(-time.Duration(i+1) * time.Hour),
		}
		if i < top {
			sel.Top = append(sel.Top, digest.Pick{Article: a, Section: digest.SectionTop})
		} else {
			sel.Recent = append(sel.Recent, digest.Pick{Article: a, Section: digest.SectionRecent})
		}
	}
	return View{
		List: subscribers.List{Name: "daily", Title: "The Daily", From: "The Daily <daily@news.example>"},
		Edition: digest.Edition{
			ID: digest.EditionID("daily", testSlot), List: "daily", Slot: testSlot,
			Intro:   "Good morning.\n\nA calm day on the water.",
			Stories: sel,
		},
		Brand: Brand{
			SiteName:      "Harbour Gazette",
			SiteURL:       "https://news.example/",
			LogoURL:       "https://news.example/logo.png",
			PostalAddress: "Harbour Gazette Ltd\n1 Quay Street\nPortsmouth PO1 1AA, UK",
			Footer:        "Independent local news since 1902.",
		},
		ViewURL: "https://news.example/archive/daily-20261127-0700",
	}
}
