package subscribers

import (
	"fmt"
	"regexp"
	"time"
)

// List is a newsletter: who it comes from, when it goes out and how its
// stories are chosen.
type List struct {
	Name     string `json:"name"` // short identifier, e.g. "daily"
	Title    string `json:"title"`
	From     string `json:"from"`               // "Name <addr>" or addr
	ReplyTo  string `json:"reply_to,omitempty"` // optional
	Schedule string `json:"schedule,omitempty"` // cron spec or "local"
	Template string `json:"template,omitempty"` // template set name; empty = default

	// Selection.
	TopCount    int           `json:"top_count"`
	RecentCount int           `json:"recent_count"`
	Window      time.Duration `json:"window"`
	MinStories  int           `json:"min_stories"`
	CategoryCap int           `json:"category_cap,omitempty"`

	Created time.Time `json:"created"`
}

var listName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate checks the list's fields and says which one is wrong.
func (l List) Validate() error {
	if !listName.MatchString(l.Name) {
		return fmt.Errorf("list name %q: use 1–64 lower-case letters, digits, '-' or '_'", l.Name)
	}
	if l.From == "" {
		return fmt.Errorf("list %s: from address is required", l.Name)
	}
	if _, err := ParseAddress(l.From); err != nil {
		return fmt.Errorf("list %s: from: %w", l.Name, err)
	}
	if l.ReplyTo != "" {
		if _, err := ParseAddress(l.ReplyTo); err != nil {
			return fmt.Errorf("list %s: reply-to: %w", l.Name, err)
		}
	}
	if l.TopCount < 0 || l.RecentCount < 0 || l.MinStories < 0 || l.CategoryCap < 0 || l.Window < 0 {
		return fmt.Errorf("list %s: counts and window must not be negative", l.Name)
	}
	return nil
}
