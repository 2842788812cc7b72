package adminapi

import (
	"errors"
	"net/http"
	"net/url"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/digest/schedule"
	"newsdigest/subscribers"
)

// CheckList checks what subscribers.List.Validate cannot (the list
// package does not know schedules): the schedule is a cron spec that
// robfig/cron accepts, with a known CRON_TZ, or "local". Direct.PutList
// runs it, so the CLI and the admin API refuse a bad schedule alike.
func CheckList(l subscribers.List) error {
	if l.Schedule == "" {
		return nil
	}
	if _, err := schedule.ParseSpec(l.Schedule); err != nil {
		return invalid("list %s: %v", l.Name, err)
	}
	return nil
}

// PutList checks the list (CheckList) and stores it.
func (d Direct) PutList(l subscribers.List) error {
	if err := CheckList(l); err != nil {
		return err
	}
	return d.Store.PutList(l)
}

// SendRequest is the body of POST /api/lists/{name}/send.
type SendRequest struct {
	// ForceNew sends a new edition even if the edition of the current
	// period exists (was sent, or is being sent).
	ForceNew bool `json:"force_new"`
}

// SendResult answers POST /api/lists/{name}/send: the edition recorded
// and queued; it is being delivered (follow it with GET
// /api/editions/{id}/stats).
type SendResult struct {
	Edition    string `json:"edition"`
	Stories    int    `json:"stories"`
	Recipients int    `json:"recipients"`
	Skipped    bool   `json:"skipped,omitempty"` // nothing new: no edition
	Reason     string `json:"reason,omitempty"`
}

// TriggerFunc starts an edition now (the daemon's scheduler): it records
// and queues it and delivers it in the background.
type TriggerFunc func(list string, forceNew bool) (digest.Edition, error)

// handleSend is POST /api/lists/{name}/send: an editor's "send now". A
// second send of the same edition (same list and period) answers 409
// with the reason, unless force_new; nothing new answers 200 with
// skipped.
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	if s.Trigger == nil {
		notAvailable(w, "sending is not available on this server")
		return
	}
	var req SendRequest
	if r.ContentLength != 0 && !s.decode(w, r, &req) {
		return
	}
	name := r.PathValue("name")
	if _, err := s.Service.GetList(name); err != nil {
		s.error(w, r, err)
		return
	}
	ed, err := s.Trigger(name, req.ForceNew)
	switch {
	case errors.Is(err, delivery.ErrNothingNew):
		writeJSON(w, http.StatusOK, SendResult{Skipped: true, Reason: err.Error()})
		return
	case errors.Is(err, delivery.ErrEditionExists):
		writeJSON(w, http.StatusConflict, Error{Error: err.Error(), Code: "exists"})
		return
	case err != nil:
		s.error(w, r, err)
		return
	}
	s.log().Info("edition triggered through the admin API", "list", name, "edition", ed.ID, "force_new", req.ForceNew)
	writeJSON(w, http.StatusAccepted, SendResult{Edition: ed.ID, Stories: ed.Stories.Len()})
}

// Send asks the daemon to send the list's edition now. A refused second
// send returns an *APIError wrapping boltstore.ErrExists with the
// daemon's reason.
func (c *Client) Send(list string, forceNew bool) (SendResult, error) {
	var out SendResult
	// Errors read as the CLI's own send reports them.
	err := c.do("POST", "/api/lists/"+url.PathEscape(list)+"/send", nil, SendRequest{ForceNew: forceNew}, &out)
	return out, err
}
