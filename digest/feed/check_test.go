package feed

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"

	"newsdigest/digest"
)

// allowedTags are the elements Policy lets through.
var allowedTags = map[string]bool{
	"p": true, "br": true, "a": true, "strong": true, "b": true, "em": true, "i": true,
	"ul": true, "ol": true, "li": true, "blockquote": true,
}

// articleProblems checks the invariants every cleaned article must hold and
// returns what is wrong with a, if anything. It is shared by the fixture
// tests and FuzzParse.
func articleProblems(a digest.Article) []string {
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	if u, err := url.Parse(a.Link); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("link %q is not an absolute http(s) URL", a.Link)
	}
	if a.ID != digest.ArticleID(a.GUID, a.Link) {
		add("ID %q is not ArticleID(guid, link)", a.ID)
	}
	if a.Title == "" {
		add("empty title")
	}
	for name, v := range map[string]string{"title": a.Title, "summary text": a.SummaryText, "author": a.Author, "guid": a.GUID} {
		if strings.ContainsAny(v, "\r\n\x00") {
			add("%s %q has CR, LF or NUL", name, v)
		}
		if !utf8.ValidString(v) {
			add("%s %q is not valid UTF-8", name, v)
		}
	}
	if strings.Contains(a.Title, "<") {
		add("title %q has '<'", a.Title)
	}
	if n := utf8.RuneCountInString(a.Title); n > MaxTitleRunes {
		add("title has %d runes", n)
	}
	if n := utf8.RuneCountInString(a.SummaryText); n > MaxSummaryTextRunes {
		add("summary text has %d runes", n)
	}
	if n := utf8.RuneCountInString(a.Author); n > MaxAuthorRunes {
		add("author has %d runes", n)
	}
	if len(a.Categories) > MaxCategories {
		add("%d categories", len(a.Categories))
	}
	for _, c := range a.Categories {
		if c == "" || strings.ContainsAny(c, "\r\n<") {
			add("category %q", c)
		}
	}
	if a.ImageURL != "" {
		if u, err := url.Parse(a.ImageURL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("image %q is not absolute https", a.ImageURL)
		}
	}
	// Some slack over the budget: the closing "…" may overshoot it.
	if len(a.SummaryHTML) > MaxSummaryHTMLBytes+16 {
		add("summary HTML is %d bytes", len(a.SummaryHTML))
	}
	bad = append(bad, htmlProblems(a.SummaryHTML)...)
	return bad
}

// htmlProblems reports anything in s that Policy must never let through:
// elements outside the allow-list, any attribute but href and rel on <a>,
// event handlers, and hrefs other than absolute http, https and mailto.
func htmlProblems(s string) []string {
	var bad []string
	if strings.Contains(strings.ToLower(s), "<script") {
		bad = append(bad, "summary HTML contains <script")
	}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return bad
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken && tt != html.EndTagToken {
			continue
		}
		tok := z.Token()
		if !allowedTags[tok.Data] {
			bad = append(bad, fmt.Sprintf("element <%s> in summary HTML", tok.Data))
		}
		for _, at := range tok.Attr {
			switch {
			case strings.HasPrefix(strings.ToLower(at.Key), "on"):
				bad = append(bad, fmt.Sprintf("event handler %s=%q", at.Key, at.Val))
			case tok.Data == "a" && at.Key == "href":
				u, err := url.Parse(at.Val)
				if err != nil || !(u.Scheme == "http" && u.Host != "" || u.Scheme == "https" && u.Host != "" || u.Scheme == "mailto") {
					bad = append(bad, fmt.Sprintf("href %q", at.Val))
				}
				if strings.Contains(strings.ToLower(at.Val), "javascript:") {
					bad = append(bad, fmt.Sprintf("javascript: in href %q", at.Val))
				}
			case tok.Data == "a" && at.Key == "rel":
			default:
				bad = append(bad, fmt.Sprintf("attribute %s=%q on <%s>", at.Key, at.Val, tok.Data))
			}
		}
	}
}
