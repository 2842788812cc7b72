package subscribers

import "time"

// EventKind is what happened to mail sent to a subscriber.
type EventKind string

// Event kinds.
const (
	EventHardBounce EventKind = "hard_bounce" // permanent failure (5.x.x): suppressed at once
	EventSoftBounce EventKind = "soft_bounce" // temporary failure (4.x.x): suppressed after repeats
	EventComplaint  EventKind = "complaint"   // an abuse report (ARF): suppressed at once
)

// Event is one bounce or complaint recorded against a subscriber.
type Event struct {
	Kind    EventKind `json:"kind"`
	At      time.Time `json:"at"`
	Edition string    `json:"edition,omitempty"` // the edition the bounced message belonged to, when known
	List    string    `json:"list,omitempty"`
	Status  string    `json:"status,omitempty"` // enhanced status code, e.g. "5.1.1"
	Detail  string    `json:"detail,omitempty"` // diagnostic code, or the feedback type of a complaint
	Source  string    `json:"source,omitempty"` // where the report came from: "smtp" or a file name
	Action  string    `json:"action,omitempty"` // what newsdigest did: "suppressed", "counted 2/3"
}
