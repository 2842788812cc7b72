package subscribers

import (
	"fmt"
	"regexp"
	"strings"
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
	// MaxLateness is how late a scheduled edition may still go out (after
	// downtime, or to a reader who just became due); 0 = the default, 3h.
	MaxLateness time.Duration `json:"max_lateness,omitempty"`
	Template    string        `json:"template,omitempty"` // template set name; empty = default

	// Selection.
	TopCount    int           `json:"top_count"`
	RecentCount int           `json:"recent_count"`
	Window      time.Duration `json:"window"`
	MinStories  int           `json:"min_stories"`
	CategoryCap int           `json:"category_cap,omitempty"`

	// The editor's intro and subject for the next edition: used by the
	// next edition created (scheduled or manual), then cleared.
	NextIntro   string `json:"next_intro,omitempty"`
	NextSubject string `json:"next_subject,omitempty"`

	Created time.Time `json:"created"`
}

var listName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate checks the list's fields and says which one is wrong.
func (l List) Validate() error {
	if !listName.MatchString(l.Name) {
		return fmt.Errorf("list name %q: use 1–64 lower-case letters, digits, '-' or '_'", l.Name)
	}
	for _, f := range []struct{ name, v string }{{"title", l.Title}, {"from", l.From}, {"reply-to", l.ReplyTo}, {"schedule", l.Schedule}, {"template", l.Template}} {
		if strings.ContainsFunc(f.v, func(r rune) bool {
			return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029'
		}) {
			return fmt.Errorf("list %s: %s must not contain line breaks or control characters", l.Name, f.name)
		}
	}
	if len([]rune(l.Title)) > 200 {
		return fmt.Errorf("list %s: title is longer than 200 characters", l.Name)
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
	if l.MaxLateness < 0 {
		return fmt.Errorf("list %s: max lateness must not be negative", l.Name)
	}
	if strings.ContainsAny(l.NextSubject, "\r\n") {
		return fmt.Errorf("list %s: subject must be one line", l.Name)
	}
	if len(l.NextSubject) > 200 || len(l.NextIntro) > 5000 {
		return fmt.Errorf("list %s: subject (200) or intro (5000 bytes) too long", l.Name)
	}
	return nil
}
