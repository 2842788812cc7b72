package adminapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"newsdigest/subscribers"
)

// MaxBounceBytes bounds a bounce message posted to /api/bounces.
const MaxBounceBytes = 8 << 20

// Ops serves the operations endpoints of the admin API, with the same
// bearer token as Server:
//
//	GET  /api/backup                       a consistent hot copy of the database (application/octet-stream)
//	GET  /api/subscribers/{email}/events   the subscriber's bounce and complaint events (JSON)
//	POST /api/bounces?source=NAME          process one bounce or complaint message (the raw message as the body)
//
// Mount its Handler beside Server's on the admin address (the more
// specific patterns win in an http.ServeMux).
type Ops struct {
	Token string
	// Backup writes the copy; Events and ProcessBounce may be nil (404).
	Backup        func(w io.Writer) (int64, error)
	Events        func(email string) ([]subscribers.Event, error)
	ProcessBounce func(r io.Reader, source string) (any, error)
	Log           *slog.Logger
}

// Patterns lists the routes Handler serves, for mounting.
func (o *Ops) Patterns() []string {
	return []string{"GET /api/backup", "GET /api/subscribers/{email}/events", "POST /api/bounces"}
}

func (o *Ops) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// Handler serves the routes of Patterns, each behind the bearer token.
func (o *Ops) Handler() (http.Handler, error) {
	if len(o.Token) < MinTokenLen {
		return nil, fmt.Errorf("adminapi: the admin token must be at least %d characters", MinTokenLen)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/backup", func(w http.ResponseWriter, r *http.Request) {
		if o.Backup == nil {
			notAvailable(w, "backup is not available")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="newsdigest.db"`)
		n, err := o.Backup(w)
		if err != nil {
			// Headers are gone once bytes are: the client sees a short
			// body and must check the copy (the CLI does).
			o.log().Error("backup through the admin API failed", "bytes", n, "err", err)
			if n == 0 {
				writeJSON(w, http.StatusInternalServerError, Error{Error: err.Error(), Code: "internal"})
			}
			return
		}
		o.log().Info("backup through the admin API", "bytes", n)
	})
	mux.HandleFunc("GET /api/subscribers/{email}/events", func(w http.ResponseWriter, r *http.Request) {
		if o.Events == nil {
			notAvailable(w, "events are not available")
			return
		}
		evs, err := o.Events(r.PathValue("email"))
		if err != nil {
			code, name := status(err)
			writeJSON(w, code, Error{Error: err.Error(), Code: name})
			return
		}
		writeJSON(w, http.StatusOK, orEmpty(evs))
	})
	mux.HandleFunc("POST /api/bounces", func(w http.ResponseWriter, r *http.Request) {
		if o.ProcessBounce == nil {
			notAvailable(w, "bounce processing is not available")
			return
		}
		source := r.URL.Query().Get("source")
		if source == "" {
			source = "api"
		}
		res, err := o.ProcessBounce(http.MaxBytesReader(w, r.Body, MaxBounceBytes), source)
		if err != nil {
			o.log().Error("bounce through the admin API failed", "source", source, "err", err)
			writeJSON(w, http.StatusInternalServerError, Error{Error: err.Error(), Code: "internal"})
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	want := sha256.Sum256([]byte(o.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="newsdigest admin"`)
			writeJSON(w, http.StatusUnauthorized, Error{Error: "missing or wrong bearer token", Code: "unauthorized"})
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// Backup streams the daemon's hot copy of the database into w.
func (c *Client) Backup(w io.Writer) (int64, error) {
	resp, err := c.raw("GET", "/api/backup", nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("admin API at %s: backup: %w", c.BaseURL, err)
	}
	return n, nil
}

// Events returns a subscriber's bounce and complaint events.
func (c *Client) Events(email string) ([]subscribers.Event, error) {
	var evs []subscribers.Event
	err := c.do("GET", "/api/subscribers/"+seg(email)+"/events", nil, nil, &evs)
	return evs, err
}

// ProcessBounce has the daemon process one bounce or complaint message and
// decodes its answer into out.
func (c *Client) ProcessBounce(source string, msg io.Reader, out any) error {
	resp, err := c.raw("POST", "/api/bounces", url.Values{"source": {source}}, msg)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeJSON(resp.Body, out, c.BaseURL)
}

// raw sends a request with a raw body and returns a 2xx response, or the
// API's error.
func (c *Client) raw(method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	if c.Context != nil {
		req = req.WithContext(c.Context)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "message/rfc822")
	}
	hc := c.HTTP
	if hc == nil {
		// No overall timeout: a backup of a large file takes a while.
		hc = &http.Client{}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e Error
		if decodeJSON(io.LimitReader(resp.Body, 1<<20), &e, c.BaseURL) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("admin API at %s: %s %s: %s", c.BaseURL, method, path, resp.Status)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Error = fmt.Sprintf("admin API at %s refused the token (401): check admin.token / NEWSDIGEST_ADMIN_TOKEN", c.BaseURL)
		}
		return nil, &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
	}
	return resp, nil
}

func decodeJSON(r io.Reader, out any, base string) error {
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(r).Decode(out); err != nil {
		return fmt.Errorf("admin API at %s: bad answer: %w", base, err)
	}
	return nil
}
