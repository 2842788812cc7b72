package feed

import (
	"strings"
	"testing"
	"time"
)

func TestLinksAreNormalizedSoEveryReaderAgreesWhereTheyEnd(t *testing.T) {
	feedXML := `<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://news.example.org/</link>
<item><guid>1</guid><title>Odd link</title><link>https://news.example.org/x/1?a=1&amp;b="&gt;&lt;script&gt; x</link></item>
</channel></rss>`
	res, err := Parse(strings.NewReader(feedXML), "https://news.example.org/", time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Articles) != 1 {
		t.Fatalf("got %d articles, skipped %v", len(res.Articles), res.Skipped)
	}
	got := res.Articles[0].Link
	if want := "https://news.example.org/x/1?a=1&b=%22%3E%3Cscript%3E%20x"; got != want {
		t.Errorf("link %q, want %q", got, want)
	}
	if strings.ContainsAny(got, "\"<> ") {
		t.Errorf("link %q keeps characters that end a URL early", got)
	}
}
