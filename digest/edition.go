package digest

import (
	"fmt"
	"time"
)

// EditionStatus is where an edition is in its life.
type EditionStatus string

// Edition statuses.
const (
	EditionSending EditionStatus = "sending" // deliveries queued, not all done
	EditionPaused  EditionStatus = "paused"  // stopped by an operator or by errors; resume continues
	EditionSent    EditionStatus = "sent"    // every delivery has a final state
)

// Edition is one issue of a list's digest: the stories chosen at a moment,
// sent to the list's confirmed subscribers.
type Edition struct {
	ID      string    `json:"id"` // list + slot, e.g. "daily-20261127-0700"
	List    string    `json:"list"`
	Slot    time.Time `json:"slot"` // the moment it was built for
	Subject string    `json:"subject"`
	Intro   string    `json:"intro,omitempty"`
	Stories Selection `json:"stories"` // what a reader without topics or history gets; the archive's copy
	// Pool is the candidate stories each recipient's own picks are
	// derived from (their topics, their never-repeat history, weekly or
	// daily), fixed when the edition is created so that a resumed send
	// recomputes the same copy. Empty in editions made before it existed:
	// then every recipient gets Stories. Stores keep it apart from the
	// edition's record, which the ledger rewrites at every commit.
	Pool       []Pick        `json:"-"`
	Status     EditionStatus `json:"status"`
	Reason     string        `json:"reason,omitempty"` // why it is paused
	Created    time.Time     `json:"created"`
	Finished   time.Time     `json:"finished,omitzero"`
	Sent       int           `json:"sent"`
	Failed     int           `json:"failed"`
	Suppressed int           `json:"suppressed"`
	Skipped    int           `json:"skipped,omitempty"` // recipients with nothing new for them
}

// Story returns the article with that ID among the edition's stories or
// its pool: what a click on any recipient's copy may name.
func (e Edition) Story(id string) (Article, bool) {
	for _, p := range e.Stories.Picks() {
		if p.Article.ID == id {
			return p.Article, true
		}
	}
	for _, p := range e.Pool {
		if p.Article.ID == id {
			return p.Article, true
		}
	}
	return Article{}, false
}

// EditionID names the edition of list built for the slot at (minute
// precision, UTC). Two triggers for the same slot name the same edition,
// which is what makes manual sends idempotent.
func EditionID(list string, slot time.Time) string {
	return fmt.Sprintf("%s-%s", list, slot.UTC().Format("20060102-1504"))
}

// DeliveryStatus is the state of one (edition, subscriber) delivery.
type DeliveryStatus string

// Delivery statuses. Queued is the only non-final one.
const (
	DeliveryQueued     DeliveryStatus = "queued"
	DeliverySent       DeliveryStatus = "sent"
	DeliveryFailed     DeliveryStatus = "failed"
	DeliverySuppressed DeliveryStatus = "suppressed"
	// DeliverySkipped: nothing new for this recipient (every story of
	// theirs already sent, none in their topics, or not their weekday);
	// no message was sent.
	DeliverySkipped DeliveryStatus = "skipped"
)

// Delivery is one row of the delivery ledger.
type Delivery struct {
	Edition   string         `json:"edition"`
	Email     string         `json:"email"`
	Status    DeliveryStatus `json:"status"`
	MessageID string         `json:"message_id,omitempty"`
	Reply     string         `json:"reply,omitempty"` // SMTP reply or reason, for failed and suppressed
	Attempts  int            `json:"attempts"`
	At        time.Time      `json:"at,omitzero"`
}
