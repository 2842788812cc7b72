package feed

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedFiles adds every fixture matching the patterns to the corpus.
func seedFiles(f *testing.F, patterns ...string) {
	f.Helper()
	for _, p := range patterns {
		names, err := filepath.Glob(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range names {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzParse feeds arbitrary bytes to Parse. It must not panic, and every
// article it returns must hold the package invariants (articleProblems):
// an absolute http(s) link, a non-empty one-line title without '<', and
// summary HTML with only allowed elements, no <script, no on* attributes
// and no href other than http, https or mailto (so no javascript:).
func FuzzParse(f *testing.F) {
	seedFiles(f, "testdata/*.xml", "testdata/*.json", "../../templates/demo/feed.xml")
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Parse(bytes.NewReader(data), "https://base.example/feeds/main.xml", testNow)
		if err != nil {
			if len(res.Articles) != 0 {
				t.Fatalf("error %v with %d articles", err, len(res.Articles))
			}
			return
		}
		if strings.ContainsAny(res.Title, "\r\n<") {
			t.Errorf("feed title %q", res.Title)
		}
		for _, a := range res.Articles {
			for _, p := range articleProblems(a) {
				t.Errorf("article %q: %s", a.Title, p)
			}
		}
	})
}

// FuzzCleanSummary checks the sanitizer and the truncation directly, which
// reaches odd HTML faster than going through a feed.
func FuzzCleanSummary(f *testing.F) {
	for _, s := range []string{
		`<p onclick="x()">Hi <a href="javascript:alert(1)">x</a><a href="rel">y</a></p>`,
		`<scr<script>ipt>alert(1)</script><img src=x onerror=alert(1)>`,
		`<a href="&#106;avascript:alert(1)">x</a><svg><a xlink:href="javascript:alert(1)">y</a></svg>`,
		`<p>` + strings.Repeat("word &amp; <b>bold</b> ", 300) + `</p>`,
		`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`,
		`<noscript><p title="</noscript><img src=x onerror=alert(1)>">`,
	} {
		f.Add(s)
	}
	link, _ := url.Parse("https://site.example/a/b")
	f.Fuzz(func(t *testing.T, s string) {
		h, text := cleanSummary(s, link)
		for _, p := range htmlProblems(h) {
			t.Errorf("%s in %q", p, h)
		}
		if len(h) > MaxSummaryHTMLBytes+16 {
			t.Errorf("summary HTML is %d bytes", len(h))
		}
		if strings.ContainsAny(text, "\r\n") || utf8.RuneCountInString(text) > MaxSummaryTextRunes || !utf8.ValidString(text) {
			t.Errorf("summary text %q", text)
		}
		if h != "" && text == "" {
			t.Errorf("HTML %q without text", h)
		}
		title := cutRunes(plainText(s), MaxTitleRunes)
		if strings.ContainsAny(title, "\r\n<") || utf8.RuneCountInString(title) > MaxTitleRunes || !utf8.ValidString(title) {
			t.Errorf("title %q", title)
		}
	})
}

// FuzzReadArticlesCSV checks that no CSV input panics and every full article
// imported holds the invariants.
func FuzzReadArticlesCSV(f *testing.F) {
	seedFiles(f, "testdata/*.csv")
	f.Add([]byte("guid,views\na,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		arts, _, err := ReadArticlesCSV(bytes.NewReader(data), testNow)
		if err != nil {
			return
		}
		for _, a := range arts {
			if IsPopularityUpdate(a) {
				if a.Views < 0 || strings.ContainsAny(a.GUID, "\r\n") {
					t.Errorf("popularity update %+v", a)
				}
				continue
			}
			for _, p := range articleProblems(a) {
				t.Errorf("article %q: %s", a.Title, p)
			}
		}
	})
}

// FuzzReadArticlesJSON checks the same for JSON, the format of CMS pushes
// to the admin API (POST /api/cms/articles).
func FuzzReadArticlesJSON(f *testing.F) {
	seedFiles(f, "testdata/*.json")
	f.Add([]byte(`[{"guid":"a","views":1},{"title":"<b>x</b>","link":"https://e.org/1","summary":"<img src=x onerror=alert(1)>"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		arts, _, err := ReadArticlesJSON(bytes.NewReader(data), testNow)
		if err != nil {
			return
		}
		for _, a := range arts {
			if IsPopularityUpdate(a) {
				if a.Views < 0 || strings.ContainsAny(a.GUID, "\r\n") {
					t.Errorf("popularity update %+v", a)
				}
				continue
			}
			for _, p := range articleProblems(a) {
				t.Errorf("article %q: %s", a.Title, p)
			}
		}
	})
}
