package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Article is one story published by the site.
type Article struct {
	// ID is stable: derived from the GUID, or the link when there is none.
	ID          string    `json:"id"`
	GUID        string    `json:"guid,omitempty"`
	Link        string    `json:"link"`
	Title       string    `json:"title"`
	SummaryHTML string    `json:"summary_html,omitempty"` // sanitized HTML, safe to embed
	SummaryText string    `json:"summary_text,omitempty"` // plain text
	ImageURL    string    `json:"image_url,omitempty"`    // absolute https, or empty
	Author      string    `json:"author,omitempty"`
	Categories  []string  `json:"categories,omitempty"`
	Published   time.Time `json:"published"`
	// DateGuessed says Published is the time the story was first seen, the
	// feed giving no date (or one in the future): a later fetch must not
	// move it forward.
	DateGuessed bool      `json:"date_guessed,omitempty"`
	Ingested    time.Time `json:"ingested"`
	Source      string    `json:"source,omitempty"` // feed ID or "import"

	// Popularity inputs.
	Views  int64 `json:"views"`  // supplied by the CMS
	Clicks int64 `json:"clicks"` // clicks from digests

	// Editorial controls.
	Pinned   bool    `json:"pinned,omitempty"`
	Boost    float64 `json:"boost,omitempty"` // multiplier; 0 means 1
	Excluded bool    `json:"excluded,omitempty"`
}

// ArticleID derives the stable ID of an article from its GUID, or from its
// link when the GUID is empty.
func ArticleID(guid, link string) string {
	key := "guid:" + guid
	if guid == "" {
		key = "link:" + link
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// Merge folds an incoming copy of the same story into a, keeping editorial
// controls, the first-seen times and the highest popularity counts, and
// taking the newer descriptive fields.
func (a Article) Merge(in Article) Article {
	out := in
	out.ID = a.ID
	if out.GUID == "" {
		out.GUID = a.GUID
	}
	if out.Link == "" {
		out.Link = a.Link
	}
	if out.Title == "" {
		out.Title = a.Title
	}
	if out.SummaryHTML == "" && out.SummaryText == "" {
		out.SummaryHTML, out.SummaryText = a.SummaryHTML, a.SummaryText
	}
	if out.ImageURL == "" {
		out.ImageURL = a.ImageURL
	}
	if out.Author == "" {
		out.Author = a.Author
	}
	if len(out.Categories) == 0 {
		out.Categories = a.Categories
	}
	if out.Published.IsZero() || (in.DateGuessed && !a.Published.IsZero()) {
		out.Published, out.DateGuessed = a.Published, a.DateGuessed
	}
	if !a.Ingested.IsZero() {
		out.Ingested = a.Ingested
	}
	if out.Source == "" {
		out.Source = a.Source
	}
	out.Views = max(a.Views, in.Views)
	out.Clicks = max(a.Clicks, in.Clicks)
	out.Pinned, out.Boost, out.Excluded = a.Pinned, a.Boost, a.Excluded
	return out
}
