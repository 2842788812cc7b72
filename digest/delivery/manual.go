package delivery

import (
	"errors"
	"fmt"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/schedule"
	"newsdigest/subscribers"
)

// ErrEditionExists is wrapped by Trigger's error when the edition of the
// period exists already (sent, being sent or paused).
var ErrEditionExists = errors.New("edition exists")

// ManualSlot is the slot of an edition an editor triggers at now: the
// list's latest cron slot at or before now, or, for a list without a cron
// schedule (none, or "local"), the UTC date (00:00 UTC). So a second
// trigger in the same period names the same edition and is refused.
func ManualSlot(list subscribers.List, now time.Time) time.Time {
	if spec, err := schedule.ParseSpec(list.Schedule); err == nil && !spec.Local {
		if t := spec.Latest(now.Add(-40*24*time.Hour), now); !t.IsZero() {
			return t.UTC()
		}
	}
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Trigger starts the list's edition now, as an editor's send: for the
// list's manual slot (ManualSlot). If an edition for that slot exists it
// is refused with an error wrapping ErrEditionExists that says what
// became of it, unless forceNew, which makes a new edition (its ID gets a
// suffix). It returns ErrNothingNew when there is nothing to send. The
// caller delivers the edition (Deliver).
func (e *Engine) Trigger(listName string, forceNew bool) (digest.Edition, error) {
	ed, created, err := e.StartWith(listName, StartOptions{ForceNew: forceNew})
	if err != nil {
		return ed, err
	}
	if !created {
		var state string
		switch ed.Status {
		case digest.EditionSent:
			state = fmt.Sprintf("was already sent (%d sent, %d failed, finished %s)", ed.Sent, ed.Failed, ed.Finished.UTC().Format(time.RFC3339))
		case digest.EditionPaused:
			state = fmt.Sprintf("is paused (%s): continue it with 'newsdigest editions resume %s'", ed.Reason, ed.ID)
		default:
			state = fmt.Sprintf("is being sent (%d sent so far)", ed.Sent)
		}
		return ed, fmt.Errorf("%w: edition %s of list %s for %s %s; a second send in the same period is refused (use --force-new to send a new edition)",
			ErrEditionExists, ed.ID, listName, ed.Slot.UTC().Format("2006-01-02 15:04 UTC"), state)
	}
	return ed, nil
}

// listPutter is the part of the store that clears the editor's next
// intro and subject once an edition used them.
type listPutter interface {
	PutList(l subscribers.List) error
}

// clearNext clears the list's next intro and subject once ed was created
// with them (unless an editor changed them meanwhile).
func (e *Engine) clearNext(used subscribers.List, ed digest.Edition) {
	if used.NextIntro == "" && used.NextSubject == "" {
		return
	}
	lp, ok := e.Store.(listPutter)
	if !ok {
		return
	}
	cur, err := e.Store.GetList(used.Name)
	if err != nil || cur.NextIntro != used.NextIntro || cur.NextSubject != used.NextSubject {
		return
	}
	cur.NextIntro, cur.NextSubject = "", ""
	if err := lp.PutList(cur); err != nil {
		e.log().Error("clearing the next intro and subject", "list", used.Name, "edition", ed.ID, "err", err)
	}
}
