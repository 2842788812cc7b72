package render

import "testing"

// checkLinksAgainstPlain runs links in order through one linkCheck and
// compares each answer with isHTTPURL's.
func checkLinksAgainstPlain(t *testing.T, links []string) {
	t.Helper()
	var c linkCheck
	for _, s := range links {
		if got, want := c.isHTTPURL(s), isHTTPURL(s); got != want {
			t.Fatalf("%q after %q: %v, want %v", s, links, got, want)
		}
	}
}

func TestLinkCheck(t *testing.T) {
	tok := "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA.abc_def-ghi"
	for _, links := range [][]string{
		{"https://news.example/unsubscribe/" + tok, "https://news.example/preferences/" + tok, "https://news.example/unsubscribe/x",
			"https://news.example/preferences/y", "https://news.example/unsubscribe/", "https://news.example/unsubscribe/a b"},
		{"https://news.example", "https://news.examplex", "https://", "https://x", "http://x", "http:"},
		{"http://127.0.0.1:8080/u/" + tok, "http://127.0.0.1:8080/u/b", "http://127.0.0.1:8080", "http://127.0.0.1:80800"},
		{"https://news.example/u?x=" + tok, "https://news.example/u?x="},
		{"https://news.example/u#" + tok, "https://news.example/u#"},
		{"https://news.example/a%41/" + tok, "https://news.example/a%41/b", "https://news.example/a%4/" + tok, "https://news.example/a%/b"},
		{"https://[::1]/u/x", "https://[::1/u/x", "ftp://news.example/u/x", "javascript:alert(1)//x", "//news.example/u/x"},
		{"", "x", "/x", "https://x/y\x01z", "https://x/\x7f", "https://x/ y", "https://x y/z"},
	} {
		checkLinksAgainstPlain(t, links)
	}
	var c linkCheck
	c.isHTTPURL("https://news.example/unsubscribe/" + tok)
	c.isHTTPURL("https://news.example/preferences/" + tok)
	for _, want := range []string{"https://news.example/unsubscribe/", "https://news.example/preferences/"} {
		found := false
		for i := range c.prefix {
			if p := c.prefix[i].Load(); p != nil && *p == want {
				found = true
			}
		}
		if !found {
			t.Errorf("prefix %q not remembered", want)
		}
	}
}

// FuzzLinkCheck checks that remembering good prefixes never changes an
// answer, whatever links come in whatever order.
func FuzzLinkCheck(f *testing.F) {
	f.Add("https://news.example/unsubscribe/", "abc.DEF-1_2", "x")
	f.Add("http://localhost", "x", "")
	f.Add("https://news.example", "x", "/y")
	f.Add("https://news.example/a%4", "1", "")
	f.Fuzz(func(t *testing.T, p, a, b string) {
		checkLinksAgainstPlain(t, []string{p + a, p + b, p, p + a + b, a, p + a, b})
	})
}

// BenchmarkLinkCheck compares checking a recipient's two links with
// isHTTPURL and with a linkCheck that has seen the send's links.
func BenchmarkLinkCheck(b *testing.B) {
	unsub := "https://harbourgazette.example/unsubscribe/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA.abc_def-ghi"
	prefs := "https://harbourgazette.example/preferences/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA.abc_def-ghi"
	b.Run("isHTTPURL", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !isHTTPURL(unsub) || !isHTTPURL(prefs) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("linkCheck", func(b *testing.B) {
		var c linkCheck
		b.ReportAllocs()
		for b.Loop() {
			if !c.isHTTPURL(unsub) || !c.isHTTPURL(prefs) {
				b.Fatal("refused")
			}
		}
	})
}
