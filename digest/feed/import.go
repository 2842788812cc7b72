package feed

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"newsdigest/digest"
)

// RowError reports one entry of an import file that was not imported.
type RowError struct {
	// Line is the 1-based line of the record in a CSV file (the header is
	// line 1), or the 1-based index of the object in a JSON array.
	Line   int
	Reason string
}

// Error implements error.
func (e RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// importRecord is one entry of a CMS file, JSON or CSV, before checking.
type importRecord struct {
	GUID       string
	Link       string
	Title      string
	Summary    string
	Image      string
	Author     string
	Categories []string
	Published  string // RFC 3339, or empty
	Views      string // non-negative integer, or empty
}

// IsPopularityUpdate reports whether a was read as a popularity update: an
// import entry with a guid and views but neither title nor link. Such an
// Article carries only ID (from the GUID), GUID and Views; it is meant to be
// merged into the stored article with that ID (digest.Article.Merge keeps
// the higher Views) and should not be stored when no such article exists.
func IsPopularityUpdate(a digest.Article) bool {
	return a.GUID != "" && a.Link == "" && a.Title == ""
}

// toArticle checks and cleans one import record, with the same rules as
// feed items (cleanItem). See IsPopularityUpdate for entries with only a
// guid and views.
func (rec importRecord) toArticle(now time.Time) (digest.Article, error) {
	var views int64
	if v := strings.TrimSpace(rec.Views); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			return digest.Article{}, fmt.Errorf("views %s is not a whole number", quoteShort(v))
		case n < 0:
			return digest.Article{}, fmt.Errorf("views %d is negative", n)
		}
		views = n
	}

	guid := cleanLine(rec.GUID)
	if strings.TrimSpace(rec.Title) == "" && strings.TrimSpace(rec.Link) == "" {
		switch {
		case guid == "":
			return digest.Article{}, errors.New("no guid, link or title")
		case strings.TrimSpace(rec.Views) == "":
			return digest.Article{}, errors.New("no title or link (and no views for a popularity update)")
		case len(guid) > MaxGUIDBytes:
			return digest.Article{}, fmt.Errorf("guid longer than %d bytes", MaxGUIDBytes)
		}
		return digest.Article{ID: digest.ArticleID(guid, ""), GUID: guid, Views: views}, nil
	}
	if plainText(rec.Title) == "" {
		return digest.Article{}, errors.New("no title")
	}

	var published *time.Time
	if p := strings.TrimSpace(rec.Published); p != "" {
		t, err := time.Parse(time.RFC3339, p)
		if err != nil {
			return digest.Article{}, fmt.Errorf("published %s is not an RFC 3339 time", quoteShort(p))
		}
		published = &t
	}

	a, _, err := cleanItem(rawItem{
		GUID:       rec.GUID,
		Link:       rec.Link,
		Title:      rec.Title,
		Summary:    rec.Summary,
		Images:     []string{rec.Image},
		Author:     rec.Author,
		Categories: rec.Categories,
		Published:  published,
		Views:      views,
	}, nil, now)
	return a, err
}

// ReadArticlesJSON reads a CMS export: a JSON array of objects with the
// keys guid, link, title, summary (HTML, sanitized like feed summaries),
// image, author, categories (array of strings), published (RFC 3339; the
// import time when absent) and views (a non-negative integer). Unknown keys
// are ignored.
//
// An entry with a guid and views but no title and no link is a popularity
// update: it is returned with only ID (computed from the guid), GUID and
// Views set, for the store to merge into the existing article (see
// IsPopularityUpdate). Any other entry needs a title and an http(s) link.
//
// Entries that cannot be imported (bad link, bad date, negative or
// non-numeric views, missing title, wrong types) are reported as RowErrors
// with their 1-based index and the rest are imported. The error is for
// input that is not a JSON array at all. Source is left empty.
func ReadArticlesJSON(r io.Reader, now time.Time) ([]digest.Article, []RowError, error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("feed: articles JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, nil, errors.New("feed: articles JSON: want an array of articles")
	}

	var out []digest.Article
	var bad []RowError
	for n := 1; dec.More(); n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return out, bad, fmt.Errorf("feed: articles JSON: entry %d: %w", n, err)
		}
		var in struct {
			GUID       string      `json:"guid"`
			Link       string      `json:"link"`
			Title      string      `json:"title"`
			Summary    string      `json:"summary"`
			Image      string      `json:"image"`
			Author     string      `json:"author"`
			Categories []string    `json:"categories"`
			Published  string      `json:"published"`
			Views      json.Number `json:"views"`
		}
		if err := json.Unmarshal(raw, &in); err != nil {
			bad = append(bad, RowError{Line: n, Reason: jsonReason(err)})
			continue
		}
		a, err := importRecord{
			GUID: in.GUID, Link: in.Link, Title: in.Title, Summary: in.Summary, Image: in.Image,
			Author: in.Author, Categories: in.Categories, Published: in.Published, Views: in.Views.String(),
		}.toArticle(now)
		if err != nil {
			bad = append(bad, RowError{Line: n, Reason: err.Error()})
			continue
		}
		out = append(out, a)
	}
	if _, err := dec.Token(); err != nil {
		return out, bad, fmt.Errorf("feed: articles JSON: %w", err)
	}
	return out, bad, nil
}

// jsonReason turns a decoding error for one entry into a short reason.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: want %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("want an object, got %s", te.Value)
	}
	return err.Error()
}

// csvColumns are the columns ReadArticlesCSV knows.
var csvColumns = []string{"guid", "link", "title", "summary", "image", "author", "categories", "published", "views"}

// ReadArticlesCSV reads a CMS export as CSV with a header row naming the
// columns guid, link, title, summary, image, author, categories (separated
// by ';'), published (RFC 3339) and views, in any order; other columns are
// ignored. The header must have a title column and a link or guid column,
// except for a popularity file, whose header has guid and views (and
// neither title nor link). The rules for each row are those of
// ReadArticlesJSON, including popularity updates; Line in a RowError is the
// 1-based line where the record starts. The error is for a missing or bad
// header and for input that cannot be read.
func ReadArticlesCSV(r io.Reader, now time.Time) ([]digest.Article, []RowError, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, errors.New("feed: articles CSV: empty file, want a header row")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("feed: articles CSV: header: %w", err)
	}
	col := make(map[string]int)
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")))
		if _, dup := col[h]; dup && h != "" {
			return nil, nil, fmt.Errorf("feed: articles CSV: column %q appears twice in the header", h)
		}
		col[h] = i
	}
	_, hasGUID := col["guid"]
	_, hasLink := col["link"]
	_, hasTitle := col["title"]
	_, hasViews := col["views"]
	popularity := hasGUID && hasViews && !hasLink && !hasTitle
	var missing []string
	if !hasGUID && !hasLink {
		missing = append(missing, "link or guid")
	}
	if !hasTitle && !popularity {
		missing = append(missing, "title")
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("feed: articles CSV: header lacks required column %s (known columns: %s)",
			strings.Join(missing, " and "), strings.Join(csvColumns, ", "))
	}

	var out []digest.Article
	var bad []RowError
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return out, bad, fmt.Errorf("feed: articles CSV: %w", err)
			}
			bad = append(bad, RowError{Line: pe.StartLine, Reason: pe.Err.Error()})
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a line of spaces
		}
		line, _ := cr.FieldPos(0)
		field := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		a, err := importRecord{
			GUID: field("guid"), Link: field("link"), Title: field("title"), Summary: field("summary"),
			Image: field("image"), Author: field("author"), Categories: strings.Split(field("categories"), ";"),
			Published: field("published"), Views: field("views"),
		}.toArticle(now)
		if err != nil {
			bad = append(bad, RowError{Line: line, Reason: err.Error()})
			continue
		}
		out = append(out, a)
	}
	return out, bad, nil
}
