package feed

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPlainText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"Plain", "Hello world", "Hello world"},
		{"Entities", "Tom &amp; Jerry &eacute;t&eacute; &#8212; &lt;3", "Tom & Jerry été — ‹3"},
		{"Tags", "<b>Bold</b> and <i>italic</i>", "Bold and italic"},
		{"ScriptDropped", "Safe<script>alert(1)</script> title", "Safe title"},
		{"StyleDropped", "<style>p{}</style>Styled", "Styled"},
		{"Whitespace", "  a\r\nb\tc\u2028d\u0085e\u00a0f  ", "a b c d e f"},
		{"Controls", "a\x00b\x07c\x1bd", "abcd"},
		{"Bidi", "x\u202Egnp.exe\u202C", "xgnp.exe"},
		{"BlockTagsSeparate", "<p>one</p><p>two</p>three<br>four", "one two three four"},
		{"InlineTagsJoin", "in<b>line</b>", "inline"},
		{"DoubleEscaped", "&lt;b&gt;x&lt;/b&gt;", "x"},
		{"LoneLessThan", "3 < 5", "3 ‹ 5"},
		{"InvalidUTF8", "a\xffb", "ab"},
		{"Empty", "   ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plainText(tt.in); got != tt.want {
				t.Errorf("plainText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCutRunes(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"Short", "short", 10, "short"},
		{"Exact", "0123456789", 10, "0123456789"},
		{"WordBoundary", "the quick brown fox jumps", 12, "the quick…"},
		{"NoSpace", "abcdefghijklmnop", 6, "abcde…"},
		{"Punctuation", "one, two, three", 10, "one, two…"},
		{"Runes", "ééééééééé", 5, "éééé…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cutRunes(tt.in, tt.n)
			if got != tt.want {
				t.Errorf("cutRunes(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > tt.n {
				t.Errorf("%d runes, want at most %d", n, tt.n)
			}
		})
	}
}

func TestAbsURL(t *testing.T) {
	base, _ := url.Parse("https://site.example/news/today")
	tests := []struct {
		in, want, err string
	}{
		{"https://a.example/x", "https://a.example/x", ""},
		{"HTTP://A.example/x", "http://A.example/x", ""},
		{"story", "https://site.example/news/story", ""},
		{"/story", "https://site.example/story", ""},
		{"//cdn.example/i.jpg", "https://cdn.example/i.jpg", ""},
		{"https://a.example/with space", "https://a.example/with%20space", ""},
		{"javascript:alert(1)", "", "not allowed"},
		{"  jAvAsCrIpT:alert(1)", "", "not allowed"},
		{"data:text/html,x", "", "not allowed"},
		{"ftp://a.example/", "", "not allowed"},
		{"https://u:p@a.example/", "", "user info"},
		{"https://a.example/\r\nX: y", "", "not a valid URL"},
		{"https:///nohost", "", "no host"},
		{"https://a.example/" + strings.Repeat("a", MaxURLBytes), "", "longer than"},
		{"", "", "empty"},
	}
	for _, tt := range tests {
		u, err := absURL(tt.in, base, "http", "https")
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("absURL(%q): %v", tt.in, err)
		case tt.err == "" && u.String() != tt.want:
			t.Errorf("absURL(%q) = %q, want %q", tt.in, u, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("absURL(%q) = %v, %v; want an error containing %q", tt.in, u, err, tt.err)
		}
	}
}

func TestPolicyAlone(t *testing.T) {
	in := `<p style="x" onclick="y">a <a href="https://a.example/" onclick="z">b</a> <img src="https://a.example/i.jpg"><a href="javascript:x">c</a></p><form><input></form><iframe></iframe>`
	got := Policy().Sanitize(in)
	want := `<p>a <a href="https://a.example/" rel="noreferrer">b</a> c</p>`
	if got != want {
		t.Errorf("Policy().Sanitize =\n%s\nwant\n%s", got, want)
	}
	if Policy() != Policy() {
		t.Error("Policy() built more than once")
	}
}

func TestCleanSummary(t *testing.T) {
	link, _ := url.Parse("https://site.example/a/b")
	t.Run("Truncation", func(t *testing.T) {
		in := "<blockquote><ul>" + strings.Repeat(`<li>Item with <a href="/x">a link</a> &amp; more</li>`, 200) + "</ul></blockquote>"
		h, text := cleanSummary(in, link)
		if len(h) > MaxSummaryHTMLBytes || len(h) < MaxSummaryHTMLBytes-200 {
			t.Errorf("summary HTML is %d bytes, want close to %d", len(h), MaxSummaryHTMLBytes)
		}
		if !strings.HasSuffix(h, "</ul></blockquote>") || !strings.Contains(h, "…") {
			t.Errorf("truncated HTML does not close its elements or lacks …: %q", h[len(h)-60:])
		}
		if Policy().Sanitize(h) != h {
			t.Error("truncated HTML changes when sanitized again")
		}
		if strings.Count(h, "<li>") != strings.Count(h, "</li>") || strings.Count(h, "<a ") != strings.Count(h, "</a>") {
			t.Errorf("unbalanced tags in %q", h)
		}
		if !strings.Contains(h, `href="https://site.example/x"`) {
			t.Errorf("relative link not made absolute in %q", h[:200])
		}
		if n := utf8.RuneCountInString(text); n > MaxSummaryTextRunes || n < MaxSummaryTextRunes-20 || !strings.HasSuffix(text, "…") {
			t.Errorf("summary text has %d runes and ends %q", n, text[len(text)-10:])
		}
	})
	t.Run("Short", func(t *testing.T) {
		h, text := cleanSummary("<p>Short &amp; sweet</p>", link)
		if h != "<p>Short &amp; sweet</p>" || text != "Short & sweet" {
			t.Errorf("got %q, %q", h, text)
		}
	})
	t.Run("OnlyMarkup", func(t *testing.T) {
		h, text := cleanSummary(`<p><img src="x"></p><script>alert(1)</script>`, link)
		if h != "" || text != "" {
			t.Errorf("got %q, %q; want both empty", h, text)
		}
	})
	t.Run("UnclosedTags", func(t *testing.T) {
		h, _ := cleanSummary(`<p><b>bold <i>both`, link)
		if want := "<p><b>bold <i>both</i></b></p>"; h != want {
			t.Errorf("got %q, want %q", h, want)
		}
	})
}
