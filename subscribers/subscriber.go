package subscribers

import "time"

// Status is a subscriber's standing on one list.
type Status string

// Statuses. Only confirmed subscribers receive editions.
const (
	Pending      Status = "pending"
	Confirmed    Status = "confirmed"
	Unsubscribed Status = "unsubscribed"
	Bounced      Status = "bounced"
	Complained   Status = "complained"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case Pending, Confirmed, Unsubscribed, Bounced, Complained:
		return true
	}
	return false
}

// Frequencies.
const (
	Daily  = "daily"
	Weekly = "weekly"
)

// Membership is a subscriber's status on one list and since when.
type Membership struct {
	Status Status    `json:"status"`
	Since  time.Time `json:"since"`
}

// Consent records how a subscription was agreed to.
type Consent struct {
	Time   time.Time `json:"time,omitzero"`
	IP     string    `json:"ip,omitempty"`
	Source string    `json:"source,omitempty"` // "form", "import", "cli", "api"
}

// Subscriber is one person. Email is normalized (see NormalizeEmail) and
// unique; ID is random and is what tokens and URLs carry, never the address.
type Subscriber struct {
	ID        string                `json:"id"`
	Email     string                `json:"email"`
	Name      string                `json:"name,omitempty"`
	Lists     map[string]Membership `json:"lists"`
	Timezone  string                `json:"timezone,omitempty"` // IANA name; empty = UTC
	SendHour  int                   `json:"send_hour"`          // 0–23, local; -1 = list's schedule
	Frequency string                `json:"frequency"`          // Daily or Weekly
	Topics    []string              `json:"topics,omitempty"`
	Attrs     map[string]string     `json:"attrs,omitempty"`
	Consent   Consent               `json:"consent,omitzero"`
	Created   time.Time             `json:"created"`
	Updated   time.Time             `json:"updated"`
}

// StatusOn returns the subscriber's status on list, or "" if none.
func (s Subscriber) StatusOn(list string) Status {
	return s.Lists[list].Status
}

// SetStatus sets the subscriber's status on list at t.
func (s *Subscriber) SetStatus(list string, st Status, t time.Time) {
	if s.Lists == nil {
		s.Lists = make(map[string]Membership)
	}
	if m, ok := s.Lists[list]; ok && m.Status == st {
		return
	}
	s.Lists[list] = Membership{Status: st, Since: t}
}
