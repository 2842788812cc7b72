package mailer

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/render"
)

// tenStories is a fixture like getFixture's but with a ten-story edition,
// the size of the benchmark's digest (about 22 KB on the wire): its
// prepared edition and a template of it with an HTML part.
func tenStories(t testing.TB) *tmplFixture {
	t.Helper()
	v := fixedView()
	var sel digest.Selection
	for i := range 10 {
		link := fmt.Sprintf("https://harbourgazette.example/news/%d/story-%d", 2026000+i, i)
		body := fmt.Sprintf("Desk %d reports that the new plans for the quay were discussed at length by residents, traders and the harbour board on Tuesday evening. ", i)
		pk := digest.Pick{Article: digest.Article{
			ID: digest.ArticleID("", link), Link: link, Title: fmt.Sprintf("Story %d: what the new quay plans mean for the town", i),
			SummaryHTML: "<p>" + body + "</p>", SummaryText: body, Author: "Staff", Categories: []string{"Harbour"},
			ImageURL: fmt.Sprintf("https://harbourgazette.example/images/%d.jpg", i), Published: v.Edition.Slot.Add(-time.Hour),
		}, Section: digest.SectionTop}
		if i >= 5 {
			pk.Section = digest.SectionRecent
			sel.Recent = append(sel.Recent, pk)
		} else {
			sel.Top = append(sel.Top, pk)
		}
	}
	v.Edition.Stories = sel
	r, err := render.New("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Prepare(v)
	if err != nil {
		t.Fatal(err)
	}
	f := &tmplFixture{prep: p, shared: getFixture(t).shared}
	if f.withHTML, err = NewTemplate(f.shared, p.Segments(false), p.Segments(true)); err != nil {
		t.Fatal(err)
	}
	return f
}

// dotLine reports whether a line of b starts with '.'.
func dotLine(b []byte) bool {
	return bytes.HasPrefix(b, []byte(".")) || bytes.Contains(b, []byte("\n."))
}

// TestTemplateNeedsNoStuffing: a digest's message from a template has no
// line starting with '.', so it goes out without dot-stuffing, while the
// same message from go-mail (Build and WriteTo) has such lines (CSS in
// <style>, soft line breaks before a '.'): the template's encoder is what
// removes them, and the message still decodes to Build's.
func TestTemplateNeedsNoStuffing(t *testing.T) {
	f := getFixture(t)
	big := tenStories(t)
	goMailDotted := 0
	for _, tc := range []struct {
		name string
		f    *tmplFixture
		tm   *Template
		html bool
	}{
		{"HTML", f, f.withHTML, true},
		{"TextOnly", f, f.textOnly, false},
		{"TenStories", big, big.withHTML, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range tmplCases {
				tmpl, gm, _, err := bothWays(t, tc.f, tc.tm, tc.f.shared, tc.html, c)
				if err != nil {
					continue
				}
				sameMessage(t, tc.f, c, tmpl, gm, tc.html)
				if dotLine(tmpl) || !stuffingFree([][]byte{tmpl}) {
					t.Fatalf("%q: a line of the template's message starts with '.'", c.name)
				}
				if dotLine(gm) {
					goMailDotted++
				}
			}
		})
	}
	if goMailDotted == 0 {
		t.Fatal("no go-mail message had a line starting with '.': the test shows nothing")
	}
}
