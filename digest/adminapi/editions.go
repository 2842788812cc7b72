package adminapi

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
)

// Editions, previews and resumed sends:
//
//	GET  /api/editions?list=L                every edition (of list L), newest first
//	GET  /api/editions/{id}                  one edition
//	GET  /api/editions/{id}/detail           one edition with its queued count, failures and stats
//	POST /api/editions/{id}/pause            pause it (a running send stops after its page)
//	POST /api/editions/{id}/resume           continue its send in the daemon (202 with the run)
//	GET  /api/editions/{id}/delivery         the daemon's latest run of its send: progress, result
//	GET  /api/lists/{name}/preview?as=EMAIL  the edition as it would be sent now, rendered, with reasons
//	GET  /api/lists/{name}/sample            the message the edition would send a sample reader (.eml)
//
// The first four are Service methods (the CLI's editions commands use
// them on the store or the daemon alike); preview and sample need the
// daemon's renderer (Editor), resume and delivery its sender (Runner).

// ErrBusy is wrapped by Runner.Resume's error when a send of the edition
// is running already (409, code "busy").
var ErrBusy = errors.New("its send is running already")

// EditionDetail is an edition with what `editions show` prints beside
// it: the deliveries still queued, the failed and suppressed ones (with
// the SMTP reply; the first DetailFailures of them in email order, out of
// FailuresTotal), and its stats.
type EditionDetail struct {
	Edition       digest.Edition    `json:"edition"`
	Queued        int               `json:"queued"`
	Failures      []digest.Delivery `json:"failures"`
	FailuresTotal int               `json:"failures_total"`
	Stats         EditionStats      `json:"stats"`
}

// DetailFailures is how many failed or suppressed deliveries an
// EditionDetail lists at most.
const DetailFailures = 100

// FailureLister is a store that reads an edition's failed and suppressed
// delivery records in email order, at most limit of them, without
// decoding the rest of its ledger. EditionDetail uses it when the store
// has it; otherwise it reads the whole ledger, and only when the
// edition's counters say it has failures.
type FailureLister interface {
	FailedDeliveries(editionID string, limit int) ([]digest.Delivery, error)
}

// EditionDetail reads the edition, its stats (with the queued count) and
// at most DetailFailures of its failed and suppressed deliveries.
func (d Direct) EditionDetail(id string) (EditionDetail, error) {
	ed, err := d.GetEdition(id)
	if err != nil {
		return EditionDetail{}, err
	}
	det := EditionDetail{Edition: ed, Failures: []digest.Delivery{}, FailuresTotal: ed.Failed + ed.Suppressed}
	if det.Stats, err = d.EditionStats(ed.ID); err != nil {
		return EditionDetail{}, err
	}
	det.Queued = det.Stats.Queued
	if det.FailuresTotal == 0 {
		return det, nil
	}
	if fl, ok := any(d.Store).(FailureLister); ok {
		fs, err := fl.FailedDeliveries(ed.ID, DetailFailures)
		if err != nil {
			return EditionDetail{}, err
		}
		det.Failures = append(det.Failures, fs...)
		det.FailuresTotal = max(det.FailuresTotal, len(fs))
		return det, nil
	}
	ds, err := d.Deliveries(ed.ID)
	if err != nil {
		return EditionDetail{}, err
	}
	det.FailuresTotal = 0
	for _, dl := range ds {
		if dl.Status == digest.DeliveryFailed || dl.Status == digest.DeliverySuppressed {
			if det.FailuresTotal++; len(det.Failures) < DetailFailures {
				det.Failures = append(det.Failures, dl)
			}
		}
	}
	return det, nil
}

// PauseEdition pauses an edition that is being sent, with the reason
// "paused by an operator"; an edition in another state is returned as it
// is. A send running in any process stops within a ledger commit (the
// engine looks after each).
func (d Direct) PauseEdition(id string) (digest.Edition, error) {
	return d.UpdateEdition(id, func(e *digest.Edition) error {
		if e.Status == digest.EditionSending {
			e.Status, e.Reason = digest.EditionPaused, "paused by an operator"
		}
		return nil
	})
}

// Editor renders a list's edition as it would be sent now, without
// sending or recording anything: the delivery engine of the daemon or of
// the CLI, or a Client of the daemon.
type Editor interface {
	// Preview is delivery.Engine.Preview.
	Preview(list, as string) (delivery.Preview, error)
	// Sample composes the edition's message for a sample reader, exactly
	// as a send would (headers, DKIM), for checking.
	Sample(list string) (Sample, error)
}

// Sample answers GET /api/lists/{name}/sample.
type Sample struct {
	Edition digest.Edition `json:"edition"`
	// Skipped says the edition would be skipped now (fewer new stories
	// than the list's minimum); the message is composed with what there is.
	Skipped bool `json:"skipped"`
	// EML is the message as sent (base64 in JSON).
	EML []byte `json:"eml"`
}

// Preview answers GET /api/lists/{name}/preview: delivery.Preview on the
// wire. HTML and Text are base64 in JSON, so that the CLI writes the very
// bytes the daemon rendered.
type Preview struct {
	// The fields of delivery.Preview, in its order (a conversion).
	Edition digest.Edition `json:"edition"`
	HTML    []byte         `json:"html"`
	Text    []byte         `json:"text"`
	Subject string         `json:"subject"`
	Empty   bool           `json:"empty"`
	Reader  string         `json:"reader,omitempty"`
	Skip    string         `json:"skip,omitempty"`
}

// Runner runs an edition's send in the daemon.
type Runner interface {
	// Resume starts the delivery of the edition's queued recipients in
	// the background (a paused edition goes back to sending) and returns
	// the run. Its error wraps ErrBusy when a send of it is running.
	Resume(edition string) (DeliveryRun, error)
	// Run returns the latest run of the edition's send in the daemon
	// (running or finished), or an error wrapping boltstore.ErrNotFound
	// when there was none since the daemon started.
	Run(edition string) (DeliveryRun, error)
}

// DeliveryRun is one run of an edition's send in the daemon: its
// progress while it runs, its result when it is over.
type DeliveryRun struct {
	Edition    string        `json:"edition"`
	Running    bool          `json:"running"`
	Done       int           `json:"done"`  // outcomes recorded in this run
	Total      int           `json:"total"` // deliveries queued when it started
	Sent       int           `json:"sent"`
	Failed     int           `json:"failed"`
	Suppressed int           `json:"suppressed"`
	Skipped    int           `json:"skipped"`
	Elapsed    time.Duration `json:"elapsed"` // nanoseconds
	// Error says why the run stopped before every queued delivery was
	// done (Paused: it was paused, by an operator or by errors).
	Error  string `json:"error,omitempty"`
	Paused bool   `json:"paused,omitempty"`
}

// Result is the run as delivery.Engine.Deliver reports it.
func (r DeliveryRun) Result() delivery.Result {
	return delivery.Result{Edition: r.Edition, Sent: r.Sent, Failed: r.Failed, Suppressed: r.Suppressed, Skipped: r.Skipped, Elapsed: r.Elapsed}
}

// Err is the run's error as Deliver returned it in the daemon (its text;
// it wraps delivery.ErrPaused when the run was paused).
func (r DeliveryRun) Err() error {
	switch {
	case r.Error == "":
		return nil
	case r.Paused:
		return runError{r.Error, delivery.ErrPaused}
	}
	return runError{r.Error, nil}
}

type runError struct {
	msg  string
	wrap error
}

func (e runError) Error() string { return e.msg }
func (e runError) Unwrap() error { return e.wrap }

func (s *Server) editionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/editions", func(w http.ResponseWriter, r *http.Request) {
		eds, err := s.Service.Editions(r.URL.Query().Get("list"))
		s.reply(w, r, orEmpty(eds), err)
	})
	mux.HandleFunc("GET /api/editions/{edition}", func(w http.ResponseWriter, r *http.Request) {
		ed, err := s.Service.GetEdition(r.PathValue("edition"))
		s.reply(w, r, ed, err)
	})
	mux.HandleFunc("GET /api/editions/{edition}/detail", func(w http.ResponseWriter, r *http.Request) {
		det, err := s.Service.EditionDetail(r.PathValue("edition"))
		s.reply(w, r, det, err)
	})
	mux.HandleFunc("POST /api/editions/{edition}/pause", func(w http.ResponseWriter, r *http.Request) {
		ed, err := s.Service.PauseEdition(r.PathValue("edition"))
		if err == nil {
			s.log().Info("edition paused through the admin API", "edition", ed.ID, "status", ed.Status)
		}
		s.reply(w, r, ed, err)
	})
	mux.HandleFunc("POST /api/editions/{edition}/resume", func(w http.ResponseWriter, r *http.Request) {
		if s.Runner == nil {
			notAvailable(w, "sending is not available on this server")
			return
		}
		run, err := s.Runner.Resume(r.PathValue("edition"))
		if err != nil {
			s.error(w, r, err)
			return
		}
		s.log().Info("edition resumed through the admin API", "edition", run.Edition, "queued", run.Total)
		writeJSON(w, http.StatusAccepted, run)
	})
	mux.HandleFunc("GET /api/editions/{edition}/delivery", func(w http.ResponseWriter, r *http.Request) {
		if s.Runner == nil {
			notAvailable(w, "sending is not available on this server")
			return
		}
		run, err := s.Runner.Run(r.PathValue("edition"))
		s.reply(w, r, run, err)
	})
	mux.HandleFunc("GET /api/lists/{name}/preview", func(w http.ResponseWriter, r *http.Request) {
		if s.Editor == nil {
			notAvailable(w, "previews are not available on this server")
			return
		}
		pv, err := s.Editor.Preview(r.PathValue("name"), r.URL.Query().Get("as"))
		s.reply(w, r, Preview(pv), err)
	})
	mux.HandleFunc("GET /api/lists/{name}/sample", func(w http.ResponseWriter, r *http.Request) {
		if s.Editor == nil {
			notAvailable(w, "samples are not available on this server")
			return
		}
		sm, err := s.Editor.Sample(r.PathValue("name"))
		s.reply(w, r, sm, err)
	})
}

// Editions lists the editions (of list, when not empty), newest first.
func (c *Client) Editions(list string) ([]digest.Edition, error) {
	q := url.Values{}
	if list != "" {
		q.Set("list", list)
	}
	var eds []digest.Edition
	if err := c.do(http.MethodGet, "/api/editions", q, nil, &eds); err != nil || len(eds) == 0 {
		return nil, err // none: nil, as the store answers
	}
	return eds, nil
}

// GetEdition fetches an edition.
func (c *Client) GetEdition(id string) (digest.Edition, error) {
	var ed digest.Edition
	return ed, c.do(http.MethodGet, "/api/editions/"+seg(id), nil, nil, &ed)
}

// EditionDetail fetches an edition with its queued count, failures and
// stats.
func (c *Client) EditionDetail(id string) (EditionDetail, error) {
	var det EditionDetail
	return det, c.do(http.MethodGet, "/api/editions/"+seg(id)+"/detail", nil, nil, &det)
}

// PauseEdition pauses an edition that is being sent.
func (c *Client) PauseEdition(id string) (digest.Edition, error) {
	var ed digest.Edition
	return ed, c.do(http.MethodPost, "/api/editions/"+seg(id)+"/pause", nil, nil, &ed)
}

// Resume has the daemon continue the edition's send; follow it with Run.
func (c *Client) Resume(id string) (DeliveryRun, error) {
	var run DeliveryRun
	return run, c.do(http.MethodPost, "/api/editions/"+seg(id)+"/resume", nil, nil, &run)
}

// Run returns the daemon's latest run of the edition's send.
func (c *Client) Run(id string) (DeliveryRun, error) {
	var run DeliveryRun
	return run, c.do(http.MethodGet, "/api/editions/"+seg(id)+"/delivery", nil, nil, &run)
}

// Preview has the daemon render the list's edition (for the subscriber
// as, when not empty).
func (c *Client) Preview(list, as string) (delivery.Preview, error) {
	q := url.Values{}
	if as != "" {
		q.Set("as", as)
	}
	var pv Preview
	if err := c.do(http.MethodGet, "/api/lists/"+seg(list)+"/preview", q, nil, &pv); err != nil {
		return delivery.Preview{}, err
	}
	return delivery.Preview(pv), nil
}

// Sample has the daemon compose the list's edition for a sample reader.
func (c *Client) Sample(list string) (Sample, error) {
	var sm Sample
	return sm, c.do(http.MethodGet, "/api/lists/"+seg(list)+"/sample", nil, nil, &sm)
}

var (
	_ Editor = (*Client)(nil)
	_ Runner = (*Client)(nil)
)
