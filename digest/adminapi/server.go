package adminapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/subscribers"
)

// MaxBodyBytes bounds request bodies (an import batch of a thousand
// subscribers or articles fits easily).
const MaxBodyBytes = 32 << 20

// MinTokenLen is the shortest admin token the server accepts.
const MinTokenLen = 16

// Server is the admin API. Fill the fields, then call Handler.
type Server struct {
	Service Service
	Token   string // the bearer token every request must carry
	DBPath  string // the database file, reported by /api/ping so clients can check they reach the right one
	Version string
	Log     *slog.Logger
	// MaxBody bounds request bodies; 0 means MaxBodyBytes.
	MaxBody int64
	// Trigger, if set, serves POST /api/lists/{name}/send (see send.go).
	Trigger TriggerFunc
	// Editor, if set, serves previews and samples, and Runner resumed
	// sends (see editions.go).
	Editor Editor
	Runner Runner
	// Tester, if set, serves test copies and dry runs (see dryrun.go).
	Tester Tester
}

// Ping is the answer of GET /api/ping.
type Ping struct {
	OK      bool   `json:"ok"`
	DB      string `json:"db"`
	Version string `json:"version,omitempty"`
}

// ImportRequest is the body of POST /api/subscribers/import: valid rows
// only (the client reports rejected ones itself).
type ImportRequest struct {
	Update bool        `json:"update"`
	Rows   []ImportRow `json:"rows"`
}

// ImportRow is one subscribers.Row on the wire.
type ImportRow struct {
	Line       int                    `json:"line"`
	Subscriber subscribers.Subscriber `json:"subscriber"`
	Given      subscribers.Fields     `json:"given"`
}

// ImportResult answers an import batch.
type ImportResult struct {
	Added   int `json:"added"`
	Updated int `json:"updated"`
	Skipped int `json:"skipped"`
}

// UpsertResult answers POST /api/articles.
type UpsertResult struct {
	Added  int `json:"added"`
	Merged int `json:"merged"`
}

// ViewsResult answers POST /api/articles/views.
type ViewsResult struct {
	Updated int      `json:"updated"`
	Missing []string `json:"missing"`
}

// Count answers GET /api/subscribers/count.
type Count struct {
	Count int `json:"count"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"` // not_found, exists, ambiguous, busy, invalid, unauthorized, internal
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Handler returns the API handler. It refuses to build one without a
// token of at least MinTokenLen characters.
func (s *Server) Handler() (http.Handler, error) {
	if len(s.Token) < MinTokenLen {
		return nil, fmt.Errorf("adminapi: the admin token must be at least %d characters", MinTokenLen)
	}
	if s.Service == nil {
		return nil, errors.New("adminapi: no service")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Ping{OK: true, DB: s.DBPath, Version: s.Version})
	})

	mux.HandleFunc("GET /api/lists", func(w http.ResponseWriter, r *http.Request) {
		ls, err := s.Service.Lists()
		s.reply(w, r, orEmpty(ls), err)
	})
	mux.HandleFunc("GET /api/lists/{name}", func(w http.ResponseWriter, r *http.Request) {
		l, err := s.Service.GetList(r.PathValue("name"))
		s.reply(w, r, l, err)
	})
	mux.HandleFunc("PUT /api/lists/{name}", func(w http.ResponseWriter, r *http.Request) {
		var l subscribers.List
		if !s.decode(w, r, &l) {
			return
		}
		if l.Name != r.PathValue("name") {
			s.error(w, r, invalid("list name %q in the body differs from %q in the path", l.Name, r.PathValue("name")))
			return
		}
		s.reply(w, r, nil, s.Service.PutList(l))
	})
	mux.HandleFunc("GET /api/lists/{name}/schedule", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Service.GetListSchedule(r.PathValue("name"))
		s.reply(w, r, st, err)
	})
	mux.HandleFunc("POST /api/lists/{name}/send", s.handleSend)
	mux.HandleFunc("DELETE /api/lists/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.reply(w, r, nil, s.Service.DeleteList(r.PathValue("name")))
	})

	mux.HandleFunc("GET /api/subscribers/count", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, err := s.Service.CountSubscribers(q.Get("list"), subscribers.Status(q.Get("status")))
		s.reply(w, r, Count{n}, err)
	})
	mux.HandleFunc("GET /api/subscribers", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sq := boltstore.SubscriberQuery{List: q.Get("list"), Status: subscribers.Status(q.Get("status")), After: q.Get("after")}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.error(w, r, invalid("limit %q: want a count", v))
				return
			}
			sq.Limit = n
		}
		subs, err := s.Service.Subscribers(sq)
		s.reply(w, r, orEmpty(subs), err)
	})
	mux.HandleFunc("POST /api/subscribers", func(w http.ResponseWriter, r *http.Request) {
		var sub subscribers.Subscriber
		if !s.decode(w, r, &sub) {
			return
		}
		if err := s.Service.AddSubscriber(sub); err != nil {
			s.error(w, r, err)
			return
		}
		got, err := s.Service.GetSubscriber(sub.Email)
		if err != nil {
			s.error(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, got)
	})
	mux.HandleFunc("POST /api/subscribers/import", func(w http.ResponseWriter, r *http.Request) {
		var req ImportRequest
		if !s.decode(w, r, &req) {
			return
		}
		rows := make([]subscribers.Row, len(req.Rows))
		for i, ir := range req.Rows {
			rows[i] = subscribers.Row{Line: ir.Line, Subscriber: ir.Subscriber, Given: ir.Given}
		}
		a, u, k, err := s.Service.UpsertSubscribers(rows, req.Update)
		s.reply(w, r, ImportResult{a, u, k}, err)
	})
	mux.HandleFunc("GET /api/subscribers/{email}", func(w http.ResponseWriter, r *http.Request) {
		sub, err := s.Service.GetSubscriber(r.PathValue("email"))
		s.reply(w, r, sub, err)
	})
	mux.HandleFunc("PUT /api/subscribers/{email}", func(w http.ResponseWriter, r *http.Request) {
		var sub subscribers.Subscriber
		if !s.decode(w, r, &sub) {
			return
		}
		if !strings.EqualFold(strings.TrimSpace(sub.Email), r.PathValue("email")) {
			s.error(w, r, invalid("email %q in the body differs from %q in the path", sub.Email, r.PathValue("email")))
			return
		}
		s.reply(w, r, nil, s.Service.PutSubscriber(sub))
	})
	mux.HandleFunc("DELETE /api/subscribers/{email}", func(w http.ResponseWriter, r *http.Request) {
		s.reply(w, r, nil, s.Service.DeleteSubscriber(r.PathValue("email")))
	})

	mux.HandleFunc("GET /api/feeds", func(w http.ResponseWriter, r *http.Request) {
		fs, err := s.Service.Feeds()
		s.reply(w, r, orEmpty(fs), err)
	})
	mux.HandleFunc("GET /api/feeds/{feed}", func(w http.ResponseWriter, r *http.Request) {
		f, err := s.Service.GetFeed(r.PathValue("feed"))
		s.reply(w, r, f, err)
	})
	mux.HandleFunc("PUT /api/feeds/{feed}", func(w http.ResponseWriter, r *http.Request) {
		var f digest.Feed
		if !s.decode(w, r, &f) {
			return
		}
		if f.ID != r.PathValue("feed") {
			s.error(w, r, invalid("feed ID %q in the body differs from %q in the path", f.ID, r.PathValue("feed")))
			return
		}
		s.reply(w, r, nil, s.Service.PutFeed(f))
	})
	mux.HandleFunc("DELETE /api/feeds/{feed}", func(w http.ResponseWriter, r *http.Request) {
		s.reply(w, r, nil, s.Service.DeleteFeed(r.PathValue("feed")))
	})

	mux.HandleFunc("GET /api/articles", func(w http.ResponseWriter, r *http.Request) {
		var since time.Time
		if v := r.URL.Query().Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				s.error(w, r, invalid("since %q: want an RFC 3339 time", v))
				return
			}
			since = t
		}
		as, err := s.Service.Articles(since)
		s.reply(w, r, orEmpty(as), err)
	})
	mux.HandleFunc("POST /api/articles", func(w http.ResponseWriter, r *http.Request) {
		var as []digest.Article
		if !s.decode(w, r, &as) {
			return
		}
		a, m, err := s.Service.UpsertArticles(as)
		s.reply(w, r, UpsertResult{a, m}, err)
	})
	mux.HandleFunc("POST /api/articles/views", func(w http.ResponseWriter, r *http.Request) {
		var views map[string]int64
		if !s.decode(w, r, &views) {
			return
		}
		n, missing, err := s.Service.SetViews(views)
		s.reply(w, r, ViewsResult{Updated: n, Missing: orEmpty(missing)}, err)
	})
	mux.HandleFunc("GET /api/articles/{article}", func(w http.ResponseWriter, r *http.Request) {
		a, err := s.Service.GetArticle(r.PathValue("article"))
		s.reply(w, r, a, err)
	})
	mux.HandleFunc("PATCH /api/articles/{article}", func(w http.ResponseWriter, r *http.Request) {
		var e ArticleEdit
		if !s.decode(w, r, &e) {
			return
		}
		a, err := s.Service.EditArticle(r.PathValue("article"), e)
		s.reply(w, r, a, err)
	})
	mux.HandleFunc("POST /api/cms/articles", s.handleCMSArticles)
	mux.HandleFunc("GET /api/editions/{edition}/stats", s.handleEditionStats)
	s.editionRoutes(mux)
	s.testRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, Error{Error: "no such endpoint: " + r.Method + " " + r.URL.Path, Code: "not_found"})
	})

	maxBody := s.MaxBody
	if maxBody <= 0 {
		maxBody = MaxBodyBytes
	}
	want := sha256.Sum256([]byte(s.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		// Both sides hashed to the same length, compared in constant time.
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="newsdigest admin"`)
			writeJSON(w, http.StatusUnauthorized, Error{Error: "missing or wrong bearer token", Code: "unauthorized"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		mux.ServeHTTP(w, r)
	}), nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// invalidError is a bad request.
type invalidError struct{ msg string }

func (e invalidError) Error() string { return e.msg }

func invalid(format string, args ...any) error { return invalidError{fmt.Sprintf(format, args...)} }

func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, Error{Error: fmt.Sprintf("body larger than %d bytes", mbe.Limit), Code: "invalid"})
			return false
		}
		s.error(w, r, invalid("body: %v", err))
		return false
	}
	return true
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.error(w, r, err)
		return
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// status maps an error to its HTTP status and code: the one place that
// does. Errors the store reports about the request (validation) carry no
// sentinel; they answer 422 with the store's message, as the CLI would
// print it, and are logged.
func status(err error) (int, string) {
	var inv invalidError
	switch {
	case errors.Is(err, boltstore.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, boltstore.ErrExists):
		return http.StatusConflict, "exists"
	case errors.Is(err, boltstore.ErrAmbiguous):
		return http.StatusConflict, "ambiguous"
	case errors.Is(err, ErrBusy):
		return http.StatusConflict, "busy"
	case errors.As(err, &inv), errors.Is(err, subscribers.ErrInvalidEmail):
		return http.StatusBadRequest, "invalid"
	}
	return http.StatusUnprocessableEntity, "failed"
}

func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	code, name := status(err)
	if code >= http.StatusUnprocessableEntity {
		s.log().Warn("admin API", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeJSON(w, code, Error{Error: err.Error(), Code: name})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// notAvailable answers a request for what this server was set up without
// (a 404 with the code not_found and what is missing).
func notAvailable(w http.ResponseWriter, what string) {
	writeJSON(w, http.StatusNotFound, Error{Error: what, Code: "not_found"})
}
