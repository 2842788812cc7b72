package feed

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/mmcdole/gofeed"
	ext "github.com/mmcdole/gofeed/extensions"
	"golang.org/x/net/html"

	"newsdigest/digest"
)

// ErrNotAFeed is returned (wrapped) by Parse and Fetch when the input is
// not RSS, Atom or JSON Feed.
var ErrNotAFeed = errors.New("not an RSS, Atom or JSON feed")

// Result is what one fetch or parse of a feed produced.
type Result struct {
	Title       string           // the feed's own title, plain text
	Articles    []digest.Article // cleaned items, in feed order; Source is empty
	NotModified bool             // the server answered 304; Articles is empty
	// ETag and LastModified come from the response (or are carried over
	// from the digest.Feed on a 304), to be stored on the digest.Feed for
	// the next conditional GET. Both are empty for files.
	ETag, LastModified string
	// Skipped lists the items that were dropped, with why.
	Skipped []ItemError
	// Notes lists items that were kept after a correction, such as a
	// missing or future date replaced by the fetch time.
	Notes []ItemError
}

// ItemError describes an item of a feed that was skipped or corrected.
type ItemError struct {
	Index  int    // 0-based position of the item in the feed
	Title  string // the item's title as plain text, possibly empty
	Reason string
}

// Error implements error so an ItemError can be logged or wrapped as one.
func (e ItemError) Error() string {
	if e.Title == "" {
		return fmt.Sprintf("item %d: %s", e.Index, e.Reason)
	}
	return fmt.Sprintf("item %d (%q): %s", e.Index, e.Title, e.Reason)
}

// Parse reads one feed in any supported format (RSS 0.9x–2.0, Atom,
// JSON Feed) and cleans its items into articles. The XML encoding
// declaration is honoured, so ISO-8859-1 and windows-1252 feeds decode
// correctly. base, when not empty, is the feed's own URL: the feed's
// <link> is resolved against it, and item links against the feed's link
// (or base when there is none); images and links in summaries are resolved
// against each item's link. now is the ingestion time, and the published
// time of items that have no date (noted in Result.Notes).
//
// Items are skipped (Result.Skipped) when they have no usable http(s) link,
// no title and no summary to take one from, or repeat an earlier item's ID.
// Parse fails only when the input is not a feed at all.
func Parse(r io.Reader, base string, now time.Time) (Result, error) {
	res, err := parse(r, base, now)
	if err != nil {
		return Result{}, fmt.Errorf("feed: %w", err)
	}
	return res, nil
}

// parse is Parse with errors that do not name the package, for Fetch to
// wrap with the feed's URL.
func parse(r io.Reader, base string, now time.Time) (Result, error) {
	parsed, err := gofeed.NewParser().Parse(r)
	if err != nil {
		if errors.Is(err, gofeed.ErrFeedTypeNotDetected) {
			return Result{}, ErrNotAFeed
		}
		return Result{}, fmt.Errorf("parse: %w", err)
	}
	return fromFeed(parsed, base, now), nil
}

// fromFeed cleans a parsed feed.
func fromFeed(f *gofeed.Feed, base string, now time.Time) Result {
	var baseURL *url.URL
	if base != "" {
		baseURL, _ = absURL(base, nil, "http", "https")
	}
	if f.Link != "" {
		if u, err := absURL(f.Link, baseURL, "http", "https"); err == nil {
			baseURL = u
		}
	}

	res := Result{Title: cutRunes(plainText(f.Title), MaxTitleRunes)}
	seen := make(map[string]int)
	for i, item := range f.Items {
		if item == nil {
			continue
		}
		a, note, err := cleanItem(rawFromItem(item), baseURL, now)
		if err != nil {
			res.Skipped = append(res.Skipped, ItemError{Index: i, Title: cutRunes(plainText(item.Title), 80), Reason: err.Error()})
			continue
		}
		if first, dup := seen[a.ID]; dup {
			res.Skipped = append(res.Skipped, ItemError{Index: i, Title: a.Title, Reason: fmt.Sprintf("duplicate of item %d", first)})
			continue
		}
		seen[a.ID] = i
		if note != "" {
			res.Notes = append(res.Notes, ItemError{Index: i, Title: a.Title, Reason: note})
		}
		res.Articles = append(res.Articles, a)
	}
	return res
}

// rawFromItem gathers what cleanItem needs from a gofeed item.
func rawFromItem(item *gofeed.Item) rawItem {
	raw := rawItem{
		GUID:       item.GUID,
		Link:       item.Link,
		Title:      item.Title,
		Summary:    item.Description,
		Categories: item.Categories,
		Published:  item.PublishedParsed,
		Updated:    item.UpdatedParsed,
	}
	if strings.TrimSpace(raw.Summary) == "" {
		raw.Summary = item.Content
	}
	if raw.Link == "" && len(item.Links) > 0 {
		raw.Link = item.Links[0]
	}

	switch {
	case item.Author != nil && strings.TrimSpace(item.Author.Name) != "":
		raw.Author = item.Author.Name
	case len(item.Authors) > 0 && item.Authors[0] != nil && strings.TrimSpace(item.Authors[0].Name) != "":
		raw.Author = item.Authors[0].Name
	case item.DublinCoreExt != nil && len(item.DublinCoreExt.Creator) > 0:
		raw.Author = item.DublinCoreExt.Creator[0]
	}

	if item.Image != nil {
		raw.Images = append(raw.Images, item.Image.URL)
	}
	for _, enc := range item.Enclosures {
		if enc != nil && strings.HasPrefix(strings.ToLower(enc.Type), "image/") {
			raw.Images = append(raw.Images, enc.URL)
		}
	}
	raw.Images = append(raw.Images, mediaImages(item.Extensions)...)
	if img := firstImg(item.Content); img != "" {
		raw.Images = append(raw.Images, img)
	}
	if img := firstImg(item.Description); img != "" {
		raw.Images = append(raw.Images, img)
	}
	return raw
}

// mediaImages returns image URLs from Media RSS: media:content elements
// that are images (or say nothing about their type), then media:thumbnail,
// looking inside media:group as well.
func mediaImages(exts ext.Extensions) []string {
	media := exts["media"]
	if media == nil {
		return nil
	}
	var contents, thumbs []ext.Extension
	contents = append(contents, media["content"]...)
	thumbs = append(thumbs, media["thumbnail"]...)
	for _, g := range media["group"] {
		contents = append(contents, g.Children["content"]...)
		thumbs = append(thumbs, g.Children["thumbnail"]...)
	}
	var out []string
	for _, c := range contents {
		typ, medium := strings.ToLower(c.Attrs["type"]), strings.ToLower(c.Attrs["medium"])
		if strings.HasPrefix(typ, "image/") || medium == "image" || typ == "" && medium == "" {
			out = append(out, c.Attrs["url"])
		}
		thumbs = append(thumbs, c.Children["thumbnail"]...)
	}
	for _, t := range thumbs {
		out = append(out, t.Attrs["url"])
	}
	return out
}

// firstImg returns the src of the first <img> in an HTML fragment.
func firstImg(s string) string {
	z := html.NewTokenizer(strings.NewReader(capBytes(s, maxHTMLInput)))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if string(name) != "img" {
				continue
			}
			for hasAttr {
				var key, val []byte
				key, val, hasAttr = z.TagAttr()
				if string(key) == "src" && len(val) > 0 {
					return string(val)
				}
			}
		}
	}
}
