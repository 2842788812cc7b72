package feed

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"

	"newsdigest/digest"
)

// Limits applied while cleaning. They bound what one hostile item can cost
// and what reaches storage, emails and the archive.
const (
	MaxTitleRunes       = 300  // Article.Title, cut on a word boundary with "…"
	MaxSummaryHTMLBytes = 2000 // Article.SummaryHTML, cut without breaking tags
	MaxSummaryTextRunes = 500  // Article.SummaryText, cut on a word boundary
	MaxAuthorRunes      = 100  // Article.Author
	MaxCategories       = 10   // Article.Categories
	MaxCategoryRunes    = 100  // each category
	MaxURLBytes         = 2048 // links and image URLs; longer ones are rejected
	MaxGUIDBytes        = 2048 // GUIDs; longer ones are rejected

	// maxTextInput and maxHTMLInput bound how much of a field is examined at
	// all: a 1 MB title costs no more than a 64 KiB one.
	maxTextInput = 64 << 10
	maxHTMLInput = 512 << 10

	// futureSlack is how far ahead of now a published date may be before it
	// is treated as bogus (clock skew between the site and us is tolerated,
	// a story dated next year to stay on top is not).
	futureSlack = time.Hour

	ellipsis = "…"
)

// Policy returns the bluemonday policy applied to all summary HTML: p, br,
// strong, b, em, i, ul, ol, li, blockquote and a. Links keep only an href
// with an http, https or mailto scheme and get rel="noopener noreferrer"
// (the policy adds rel="noreferrer" to links that have no rel). Everything
// else — img, script, style, iframe, forms, on* and style attributes — is
// removed; the contents of script, style and similar elements are dropped
// too. The policy is built once and is safe for concurrent use; callers must
// not modify it.
func Policy() *bluemonday.Policy { return policy() }

var policy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "strong", "b", "em", "i", "ul", "ol", "li", "blockquote")
	p.AllowAttrs("href").OnElements("a")
	p.AllowAttrs("rel").Matching(regexp.MustCompile(`^noopener noreferrer$`)).OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto")
	p.RequireParseableURLs(true)
	// Relative links survive the first pass so that cleanSummary can make
	// them absolute against the item's link; they never reach an Article.
	p.AllowRelativeURLs(true)
	p.RequireNoReferrerOnLinks(true)
	return p
})

// rawItem is one story as found in a feed item or an import row, before
// cleaning. Both paths fill it and call cleanItem.
type rawItem struct {
	GUID       string
	Link       string
	Title      string
	Summary    string   // HTML
	Images     []string // candidate image URLs, best first
	Author     string
	Categories []string
	Published  *time.Time
	Updated    *time.Time
	Views      int64
}

// cleanItem turns a raw item into an Article, or says why it cannot. base,
// when not nil, resolves a relative link. The note, when not empty, records
// a correction that was made (a missing or future date).
func cleanItem(in rawItem, base *url.URL, now time.Time) (a digest.Article, note string, err error) {
	guid := cleanLine(in.GUID)
	if len(guid) > MaxGUIDBytes {
		return a, "", fmt.Errorf("guid longer than %d bytes", MaxGUIDBytes)
	}

	rawLink := strings.TrimSpace(in.Link)
	if rawLink == "" && guid != "" {
		// An RSS guid is a permalink unless it says otherwise; take it
		// when it is an absolute http(s) URL and there is no <link>.
		if u, err := absURL(guid, nil, "http", "https"); err == nil {
			rawLink = u.String()
		}
	}
	if rawLink == "" {
		if guid == "" {
			return a, "", errors.New("no link and no guid")
		}
		return a, "", errors.New("no link")
	}
	linkURL, err := absURL(rawLink, base, "http", "https")
	if err != nil {
		return a, "", fmt.Errorf("bad link %s: %v", quoteShort(rawLink), err)
	}
	link := linkURL.String()

	summaryHTML, summaryText := cleanSummary(in.Summary, linkURL)

	title := cutRunes(plainText(in.Title), MaxTitleRunes)
	if title == "" {
		// The summary's text may hold a '<' (it is plain text); a title
		// never does.
		title = strings.ReplaceAll(cutRunes(summaryText, 100), "<", "‹")
	}
	if title == "" {
		return a, "", errors.New("no title")
	}

	a = digest.Article{
		ID:          digest.ArticleID(guid, link),
		GUID:        guid,
		Link:        link,
		Title:       title,
		SummaryHTML: summaryHTML,
		SummaryText: summaryText,
		ImageURL:    pickImage(in.Images, linkURL),
		Author:      cutRunes(plainText(in.Author), MaxAuthorRunes),
		Categories:  cleanCategories(in.Categories),
		Ingested:    now,
		Views:       in.Views,
	}

	switch {
	case in.Published != nil && !in.Published.IsZero():
		a.Published = in.Published.UTC()
	case in.Updated != nil && !in.Updated.IsZero():
		a.Published = in.Updated.UTC()
	default:
		a.Published, a.DateGuessed = now, true
		note = "no date; published set to now"
	}
	if a.Published.After(now.Add(futureSlack)) {
		note = fmt.Sprintf("date %s is in the future; published set to now", a.Published.Format(time.RFC3339))
		a.Published, a.DateGuessed = now, true
	}
	return a, note, nil
}

// absURL parses raw, resolves it against base (when not nil) and accepts it
// only if it is absolute, has a host, no user info, and one of the schemes.
func absURL(raw string, base *url.URL, schemes ...string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("empty URL")
	}
	if len(raw) > MaxURLBytes {
		return nil, fmt.Errorf("URL longer than %d bytes", MaxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if base != nil {
		u = base.ResolveReference(u)
	}
	scheme := strings.ToLower(u.Scheme)
	ok := false
	for _, s := range schemes {
		ok = ok || scheme == s
	}
	switch {
	case u.Scheme == "":
		return nil, errors.New("not an absolute URL")
	case !ok:
		return nil, fmt.Errorf("scheme %q not allowed (want %s)", scheme, strings.Join(schemes, " or "))
	case u.Host == "" && scheme != "mailto":
		return nil, errors.New("no host")
	case u.User != nil:
		return nil, errors.New("URL has user info")
	case len(u.String()) > MaxURLBytes:
		return nil, fmt.Errorf("URL longer than %d bytes", MaxURLBytes)
	}
	u.Scheme = scheme
	// url.URL.String writes the query as it came: percent-encode what may
	// not stand in a URL (quotes, angle brackets, spaces), so that the
	// HTML part, the text part and any checker agree on where it ends.
	u.RawQuery = escapeQuery(u.RawQuery)
	return u, nil
}

// escapeQuery percent-encodes every byte of a raw query that RFC 3986
// does not allow there, leaving valid escapes and delimiters alone.
func escapeQuery(q string) string {
	const allowed = "-._~!$&'()*+,;=:@/?%"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(allowed, c) >= 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// pickImage returns the first candidate that resolves, against the item's
// link, to an absolute https URL; http images would be blocked or flagged
// as mixed content by mail clients, so they are not kept.
func pickImage(candidates []string, link *url.URL) string {
	for _, c := range candidates {
		if u, err := absURL(c, link, "https"); err == nil {
			return u.String()
		}
	}
	return ""
}

// cleanCategories turns categories into trimmed one-line plain text,
// dropping empties and case-insensitive duplicates, at most MaxCategories.
func cleanCategories(in []string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, c := range in {
		c = cutRunes(plainText(c), MaxCategoryRunes)
		key := strings.ToLower(c)
		if c == "" || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, c)
		if len(out) == MaxCategories {
			break
		}
	}
	return out
}

// cleanSummary sanitizes summary HTML with Policy, makes links absolute
// against the item link, and cuts it to about MaxSummaryHTMLBytes without
// breaking tags. It returns the HTML and its plain-text version (from the
// whole summary, cut to MaxSummaryTextRunes). Both are empty when the
// summary has no text.
func cleanSummary(raw string, link *url.URL) (string, string) {
	raw = strings.ToValidUTF8(capBytes(raw, maxHTMLInput), "")
	if strings.TrimSpace(raw) == "" {
		return "", ""
	}
	safe := Policy().Sanitize(raw)
	text := cutRunes(htmlText(safe), MaxSummaryTextRunes)
	if text == "" {
		return "", ""
	}
	out := Policy().Sanitize(cutHTML(safe, MaxSummaryHTMLBytes, link))
	return strings.TrimSpace(out), text
}

// htmlSpace matches runs of HTML white space, which renders as one space
// outside <pre> (not allowed here).
var htmlSpace = regexp.MustCompile(`[ \t\n\f\r]+`)

// voidElements are the allowed elements that have no end tag.
var voidElements = map[string]bool{"br": true}

// cutHTML re-serializes already sanitized HTML, resolving hrefs against
// link (dropping those that do not resolve to http, https or mailto) and
// stopping before budget bytes, closing whatever elements are open. Text is
// cut on a word boundary and marked with "…".
func cutHTML(s string, budget int, link *url.URL) string {
	var b strings.Builder
	var open []string
	closers := 0 // bytes needed to close everything in open
	z := html.NewTokenizer(strings.NewReader(s))
	truncated := false
loop:
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			break loop
		case html.TextToken:
			text := htmlSpace.ReplaceAllString(string(z.Text()), " ")
			esc := html.EscapeString(text)
			if b.Len()+len(esc)+closers <= budget {
				b.WriteString(esc)
				continue
			}
			room := budget - b.Len() - closers - len(ellipsis)
			b.WriteString(cutEscaped(text, room))
			truncated = true
			break loop
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.Data == "a" {
				tok.Attr = linkAttrs(tok.Attr, link)
			}
			void := voidElements[tok.Data] || tt == html.SelfClosingTagToken
			str := tok.String()
			need := len(str)
			if !void {
				need += len(tok.Data) + 3
			}
			if b.Len()+need+closers+len(ellipsis) > budget {
				truncated = true
				break loop
			}
			b.WriteString(str)
			if !void {
				open = append(open, tok.Data)
				closers += len(tok.Data) + 3
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			for i := len(open) - 1; i >= 0; i-- {
				if open[i] != string(name) {
					continue
				}
				for j := len(open) - 1; j >= i; j-- {
					b.WriteString("</" + open[j] + ">")
					closers -= len(open[j]) + 3
				}
				open = open[:i]
				break
			}
		}
	}
	if truncated {
		s := strings.TrimRightFunc(b.String(), unicode.IsSpace)
		b.Reset()
		b.WriteString(s)
		b.WriteString(ellipsis)
	}
	for j := len(open) - 1; j >= 0; j-- {
		b.WriteString("</" + open[j] + ">")
	}
	return b.String()
}

// cutEscaped returns the longest word-bounded prefix of text whose escaped
// form fits in room bytes, escaped.
func cutEscaped(text string, room int) string {
	if room <= 0 {
		return ""
	}
	n, lastSpace := 0, -1
	cut := len(text)
	for i, r := range text {
		w := len(html.EscapeString(string(r)))
		if n+w > room {
			cut = i
			break
		}
		if unicode.IsSpace(r) {
			lastSpace = i
		}
		n += w
	}
	if cut < len(text) && lastSpace > 0 {
		cut = lastSpace
	}
	return html.EscapeString(text[:cut])
}

// linkAttrs keeps an <a>'s href only if it resolves against link to an
// http, https or mailto URL, and then sets rel="noopener noreferrer".
func linkAttrs(attrs []html.Attribute, link *url.URL) []html.Attribute {
	for _, a := range attrs {
		if a.Key != "href" {
			continue
		}
		u, err := absURL(a.Val, link, "http", "https", "mailto")
		if err != nil {
			return nil
		}
		return []html.Attribute{{Key: "href", Val: u.String()}, {Key: "rel", Val: "noopener noreferrer"}}
	}
	return nil
}

// skipContent are elements whose text is never shown.
var skipContent = map[string]bool{
	"script": true, "style": true, "noscript": true, "template": true, "title": true,
	"iframe": true, "object": true, "noembed": true, "noframes": true, "textarea": true, "xmp": true,
}

// inline are elements that do not separate words.
var inline = map[string]bool{
	"a": true, "abbr": true, "b": true, "bdi": true, "bdo": true, "cite": true, "code": true,
	"data": true, "del": true, "dfn": true, "em": true, "font": true, "i": true, "ins": true,
	"kbd": true, "mark": true, "q": true, "s": true, "samp": true, "small": true, "span": true,
	"strong": true, "sub": true, "sup": true, "time": true, "u": true, "var": true,
}

// htmlText extracts the text of an HTML fragment: tags removed (block
// elements separate words), entities decoded, the contents of script, style
// and the like dropped, whitespace folded to single spaces and control
// characters removed.
func htmlText(s string) string {
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(s))
	skip := ""
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return foldSpace(b.String())
		case html.TextToken:
			if skip == "" {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			n := string(name)
			if tt == html.StartTagToken && skip == "" && skipContent[n] {
				skip = n
			} else if tt == html.EndTagToken && skip == n {
				skip = ""
			}
			if !inline[n] {
				b.WriteByte(' ')
			}
		}
	}
}

// plainText turns a feed's text field (which may hold HTML or escaped HTML)
// into one line of plain text. Markup that was escaped twice is removed by
// a second pass; a '<' that is still left is replaced by '‹' so that no
// consumer can mistake the title for markup.
func plainText(s string) string {
	s = htmlText(strings.ToValidUTF8(capBytes(s, maxTextInput), ""))
	if strings.ContainsRune(s, '<') {
		s = htmlText(s)
	}
	return strings.ReplaceAll(s, "<", "‹")
}

// cleanLine removes control characters and invalid UTF-8, folds whitespace
// and trims; for identifiers like GUIDs that are not markup.
func cleanLine(s string) string {
	return foldSpace(strings.ToValidUTF8(capBytes(s, MaxGUIDBytes+1), ""))
}

// foldSpace folds runs of white space (including CR, LF, tabs, NEL and the
// Unicode line and paragraph separators) into single spaces, removes other
// control characters and bidirectional overrides, and trims.
func foldSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r), isBidiControl(r), r == '\uFEFF':
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func isBidiControl(r rune) bool {
	return r == '\u061C' || r == '\u200E' || r == '\u200F' ||
		(r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// cutRunes shortens s to at most n runes, cutting on a word boundary when
// one is reasonably close and marking the cut with "…".
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	keep := n - utf8.RuneCountInString(ellipsis)
	i, count := 0, 0
	for i = range s {
		if count == keep {
			break
		}
		count++
	}
	head := s[:i]
	if sp := strings.LastIndexByte(head, ' '); sp > len(head)/2 {
		head = head[:sp]
	}
	head = strings.TrimRight(head, " ,;:-–—")
	return head + ellipsis
}

// capBytes returns at most the first n bytes of s (possibly splitting a
// UTF-8 sequence; callers clean invalid UTF-8 afterwards).
func capBytes(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// quoteShort quotes s for an error message, shortened to 80 bytes.
func quoteShort(s string) string {
	if len(s) > 80 {
		s = strings.ToValidUTF8(s[:80], "") + "..."
	}
	return fmt.Sprintf("%q", s)
}
