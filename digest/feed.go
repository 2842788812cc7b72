package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Feed is a source of articles: an http(s) URL polled on a schedule, or a
// local file read on each fetch.
type Feed struct {
	ID           string        `json:"id"`  // FeedID(URL)
	URL          string        `json:"url"` // http(s) URL or file path
	Title        string        `json:"title,omitempty"`
	Added        time.Time     `json:"added"`
	Interval     time.Duration `json:"interval,omitempty"` // poll interval; 0 = default
	ETag         string        `json:"etag,omitempty"`
	LastModified string        `json:"last_modified,omitempty"`
	LastFetch    time.Time     `json:"last_fetch,omitzero"`
	LastError    string        `json:"last_error,omitempty"`
	Failures     int           `json:"failures,omitempty"` // consecutive
	NewItems     int           `json:"new_items"`          // at the last fetch
	NextPoll     time.Time     `json:"next_poll,omitzero"`
}

// FeedID derives a short stable ID from a feed's URL or path.
func FeedID(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:4])
}
