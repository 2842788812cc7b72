package schedule

import "time"

// ListState is what the scheduler remembers of a cron list across
// restarts.
type ListState struct {
	LastSlot    time.Time `json:"last_slot,omitzero"`     // the latest slot handled (sent, skipped or found empty)
	LastEdition string    `json:"last_edition,omitempty"` // the edition of that slot, if one was made
	LastResult  string    `json:"last_result,omitempty"`  // what the run did
	Updated     time.Time `json:"updated,omitzero"`
}

// ReaderState is what the scheduler remembers of one reader of a
// local-time list.
type ReaderState struct {
	LastDate string    `json:"last_date,omitempty"` // local date of the last edition queued for them
	Next     time.Time `json:"next,omitzero"`       // their entry in the next-send index
}

// DueEntry is an entry of a local-time list's next-send index.
type DueEntry struct {
	SubscriberID string
	At           time.Time
}

// Queued is one reader queued for a local-time edition: their ledger
// record and their next state, written together.
type Queued struct {
	SubscriberID string
	Email        string
	Date         string    // the local date they get this edition for
	Next         time.Time // their next entry in the index
}
