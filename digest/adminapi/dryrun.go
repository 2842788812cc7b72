package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
)

// Test copies and dry runs, for `send --to` and `send --dry-run` while
// the daemon holds the database:
//
//	POST /api/lists/{name}/test      {"to": ADDR}: one copy of the edition to ADDR over the
//	                                 daemon's SMTP server; nothing recorded
//	POST /api/lists/{name}/dry-run   every recipient's message, composed as a send would,
//	                                 streamed back as JSON lines; nothing sent or recorded

// Tester sends test copies and makes dry runs: the daemon's delivery
// engine. Both leave the edition, the ledger and the story history as
// they were.
type Tester interface {
	// SendTest is delivery.Engine.SendTest.
	SendTest(ctx context.Context, list, to string) (digest.Edition, error)
	// DryRun is delivery.Engine.DryRun with each message handed to write
	// (its recipient and its bytes) instead of being sent. It must stop
	// when ctx ends: the server cancels ctx when write fails (the client
	// went away or stopped reading).
	DryRun(ctx context.Context, list string, write func(to string, eml []byte) error) (delivery.Result, error)
}

// TestRequest is the body of POST /api/lists/{name}/test.
type TestRequest struct {
	To string `json:"to"`
}

// TestResult answers POST /api/lists/{name}/test.
type TestResult struct {
	Edition string `json:"edition"`
	Stories int    `json:"stories"`
	To      string `json:"to"`
}

// DryRunLine is one line of the answer of POST /api/lists/{name}/dry-run:
// a message (to, eml), or, last, the result or the error.
type DryRunLine struct {
	To  string `json:"to,omitempty"`
	EML []byte `json:"eml,omitempty"` // base64 in JSON

	Done       bool   `json:"done,omitempty"` // the last line
	Edition    string `json:"edition,omitempty"`
	Sent       int    `json:"sent,omitempty"` // messages written
	Failed     int    `json:"failed,omitempty"`
	Suppressed int    `json:"suppressed,omitempty"`
	Error      string `json:"error,omitempty"`
	NothingNew bool   `json:"nothing_new,omitempty"` // the error is delivery.ErrNothingNew
}

// dryRunWriteWait bounds the wait for the client to take one line (a
// variable for tests).
var dryRunWriteWait = time.Minute

func (s *Server) testRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/lists/{name}/test", func(w http.ResponseWriter, r *http.Request) {
		if s.Tester == nil {
			notAvailable(w, "test sends are not available on this server")
			return
		}
		var req TestRequest
		if !s.decode(w, r, &req) {
			return
		}
		if req.To == "" {
			s.error(w, r, invalid(`body: "to" (the address of the test copy) is missing`))
			return
		}
		ed, err := s.Tester.SendTest(r.Context(), r.PathValue("name"), req.To)
		if err != nil {
			s.error(w, r, err)
			return
		}
		s.log().Info("test copy sent through the admin API", "list", r.PathValue("name"), "edition", ed.ID, "to", req.To)
		writeJSON(w, http.StatusOK, TestResult{Edition: ed.ID, Stories: ed.Stories.Len(), To: req.To})
	})
	mux.HandleFunc("POST /api/lists/{name}/dry-run", func(w http.ResponseWriter, r *http.Request) {
		if s.Tester == nil {
			notAvailable(w, "dry runs are not available on this server")
			return
		}
		name := r.PathValue("name")
		if _, err := s.Service.GetList(name); err != nil {
			s.error(w, r, err) // before the stream starts: a plain error answer
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		enc := json.NewEncoder(w)
		var mu sync.Mutex
		// The first line the client does not take stops the dry run: it
		// would compose every other message for nobody.
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		res, err := s.Tester.DryRun(ctx, name, func(to string, eml []byte) error {
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			rc.SetWriteDeadline(time.Now().Add(dryRunWriteWait))
			if err := enc.Encode(DryRunLine{To: to, EML: eml}); err != nil {
				err = fmt.Errorf("dry run of %s: writing to the client: %w", name, err)
				cancel(err)
				return err
			}
			return nil
		})
		if cause := context.Cause(ctx); cause != nil && r.Context().Err() == nil {
			s.log().Warn("dry run stopped: its client does not take the messages", "list", name, "written", res.Sent, "err", cause)
			return
		}
		last := DryRunLine{Done: true, Edition: res.Edition, Sent: res.Sent, Failed: res.Failed, Suppressed: res.Suppressed}
		if err != nil {
			last.Error, last.NothingNew = err.Error(), errors.Is(err, delivery.ErrNothingNew)
		}
		mu.Lock()
		rc.SetWriteDeadline(time.Now().Add(dryRunWriteWait))
		enc.Encode(last)
		mu.Unlock()
	})
}

// SendTest has the daemon send one copy of the list's edition to addr.
func (c *Client) SendTest(list, to string) (TestResult, error) {
	var res TestResult
	return res, c.do(http.MethodPost, "/api/lists/"+seg(list)+"/test", nil, TestRequest{To: to}, &res)
}

// DryRun has the daemon compose every recipient's message of the list's
// edition and hands each to write. Its error wraps delivery.ErrNothingNew
// when the edition has nothing new.
func (c *Client) DryRun(list string, write func(to string, eml []byte) error) (delivery.Result, error) {
	resp, err := c.raw(http.MethodPost, "/api/lists/"+seg(list)+"/dry-run", nil, nil)
	if err != nil {
		return delivery.Result{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var line DryRunLine
		if err := dec.Decode(&line); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the last line never came
			}
			return delivery.Result{}, fmt.Errorf("admin API at %s: dry run of %s: %w", c.BaseURL, list, err)
		}
		if !line.Done {
			if err := write(line.To, line.EML); err != nil {
				return delivery.Result{}, err // the daemon stops when the connection goes
			}
			continue
		}
		res := delivery.Result{Edition: line.Edition, Sent: line.Sent, Failed: line.Failed, Suppressed: line.Suppressed}
		switch {
		case line.NothingNew:
			return res, runError{line.Error, delivery.ErrNothingNew}
		case line.Error != "":
			return res, runError{line.Error, nil}
		}
		return res, nil
	}
}
