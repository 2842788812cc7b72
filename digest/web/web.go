// Package web serves the public subscriber pages over HTTP: double opt-in
// sign-up (HTML form and JSON), confirmation, one-click unsubscribe
// (RFC 8058), preferences, self-service export and deletion of one's own
// data, the archive of sent editions with its RSS feed, and health checks.
//
// Every link that acts for a subscriber carries a token made by
// subscribers.Signer with a purpose (confirm, unsubscribe, preferences,
// data) and the subscriber's random ID, never an address. A forged,
// expired or unknown token gets the same answer. Pages are rendered on the
// server from templates embedded in package templates ("web/*"), work
// without JavaScript, load nothing from other hosts and are sent with a
// Content-Security-Policy. Form posts are refused when they come from
// another site (http.CrossOriginProtection), except the one-click
// unsubscribe POST, which its token alone authorizes.
package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
	"golang.org/x/time/rate"

	"newsdigest/digest"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// Store is what the pages need of storage (boltstore.Store implements it).
type Store interface {
	Lists() ([]subscribers.List, error)
	GetList(name string) (subscribers.List, error)
	GetSubscriber(email string) (subscribers.Subscriber, error)
	GetSubscriberByID(id string) (subscribers.Subscriber, error)
	// AddSubscriber stores a new subscriber, failing with an error
	// wrapping boltstore.ErrExists when the address is stored already.
	AddSubscriber(sub subscribers.Subscriber) error
	// UpdateSubscriber and UpdateSubscriberByID apply fn to the stored
	// subscriber and store the result in one transaction, so that a
	// change someone else made meanwhile (an admin, a bounce, a second
	// request) is never overwritten; an error wraps boltstore.ErrNotFound
	// when there is no such subscriber.
	UpdateSubscriber(email string, fn func(*subscribers.Subscriber) error) (subscribers.Subscriber, error)
	UpdateSubscriberByID(id string, fn func(*subscribers.Subscriber) error) (subscribers.Subscriber, error)
	DeleteSubscriber(email string) error
	Editions(list string) ([]digest.Edition, error)
	GetEdition(id string) (digest.Edition, error)
	Articles(since time.Time) ([]digest.Article, error)
	Suppressed(email string) (reason string, ok bool, err error)
	// Allow records an event under key and reports false when one was
	// recorded less than within before: the per-address mail limit.
	Allow(key string, at time.Time, within time.Duration) (bool, error)
	Forget(key string) error
}

// SendFunc delivers one system message (a confirmation or welcome email).
type SendFunc func(ctx context.Context, msg *mail.Msg) error

// Defaults of the Server's limits.
const (
	DefaultConfirmTTL   = 7 * 24 * time.Hour
	DefaultMailInterval = 24 * time.Hour      // at most one confirmation mail per address per day
	DefaultIPRate       = rate.Limit(1.0 / 6) // sign-ups per second per client IP: one every 6 s…
	DefaultIPBurst      = 5                   // …after a burst of 5
	MaxFormBytes        = 16 << 10            // request bodies of forms and JSON
	MaxNameRunes        = 100
	MaxListsPerRequest  = 20
)

// Server holds the pages' dependencies. Fill the fields, then call Handler.
type Server struct {
	Store    Store
	Signer   *subscribers.Signer
	Renderer *render.Renderer // the digest templates, for archive pages
	System   *render.System   // the confirmation and welcome emails
	Send     SendFunc         // nil: confirmation and welcome emails are logged, not sent
	Clicks   ClickRecorder    // counts digest clicks; nil: /c/ links redirect without counting
	Clock    digest.Clock
	Log      *slog.Logger

	BaseURL string // public base of every link, e.g. https://news.example.org/newsletter
	Brand   render.Brand
	// From is the sender of confirmation emails; empty means the From of
	// the first list asked for. Welcome emails come from the list's From.
	From string
	// UnsubscribeMailto is the mailto target of the welcome email's
	// List-Unsubscribe, like the digests' (mail.unsubscribe_mailto);
	// empty means the list's From address.
	UnsubscribeMailto string
	// BounceAddress is the base of the VERP return paths of confirmation
	// and welcome emails, as of the digests' (mail.bounce_address,
	// bounces@bounce.example.org → bounces+TOKEN@bounce.example.org):
	// a bounce or complaint about either comes back tied to its
	// subscriber. Empty: the return path is the From.
	BounceAddress string
	// SubscriberChanged, if set, is told of every change the pages make
	// to a subscriber, with the record before (zero when new) and after
	// (for metrics of subscribes, confirms and unsubscribes).
	SubscriberChanged func(old, new subscribers.Subscriber)

	ConfirmTTL   time.Duration // life of confirm links; default DefaultConfirmTTL
	MailInterval time.Duration // per address; default DefaultMailInterval
	IPRate       rate.Limit    // sign-ups per second per client IP; default DefaultIPRate
	IPBurst      int           // default DefaultIPBurst
	// ClientIPHeader names a header set by a trusted reverse proxy that
	// carries the client's address (e.g. "X-Real-IP", or
	// "X-Forwarded-For", whose last entry is used). Empty: the TCP peer.
	ClientIPHeader string
	// TrustedOrigins may post the sign-up form and JSON from another
	// origin (a site's own form), e.g. "https://news.example.org".
	TrustedOrigins []string

	once     sync.Once
	initErr  error
	prefix   string // path of BaseURL without the trailing slash
	pages    *pages
	limiter  *ipLimiter
	archive  *archiveCache
	topics   topicCache
	mailWG   sync.WaitGroup
	closing  chan struct{}
	closeOne sync.Once
}

func (s *Server) init() error {
	s.once.Do(func() {
		u, err := url.Parse(s.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			s.initErr = fmt.Errorf("web: base URL %q is not an absolute http(s) URL", s.BaseURL)
			return
		}
		s.BaseURL = strings.TrimRight(s.BaseURL, "/")
		s.prefix = strings.TrimRight(u.Path, "/")
		if s.Store == nil || s.Signer == nil {
			s.initErr = errors.New("web: Store and Signer are required")
			return
		}
		if s.BounceAddress != "" {
			if err := subscribers.CheckBounceAddress(s.BounceAddress); err != nil {
				s.initErr = fmt.Errorf("web: bounce address: %w", err)
				return
			}
		}
		if s.pages, err = loadPages(); err != nil {
			s.initErr = err
			return
		}
		if s.ConfirmTTL <= 0 {
			s.ConfirmTTL = DefaultConfirmTTL
		}
		if s.MailInterval <= 0 {
			s.MailInterval = DefaultMailInterval
		}
		if s.IPRate <= 0 {
			s.IPRate = DefaultIPRate
		}
		if s.IPBurst <= 0 {
			s.IPBurst = DefaultIPBurst
		}
		s.limiter = newIPLimiter(s.IPRate, s.IPBurst)
		s.archive = newArchiveCache(64)
		s.closing = make(chan struct{})
	})
	return s.initErr
}

func (s *Server) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Handler returns the HTTP handler of every public page. Paths are those
// of the brief under the base URL's path; a request whose path lacks that
// prefix (a reverse proxy that strips it) is served the same.
func (s *Server) Handler() (http.Handler, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("GET /subscribe", s.handleSubscribeForm)
	mux.HandleFunc("POST /subscribe", s.handleSubscribe)
	mux.HandleFunc("OPTIONS /subscribe", s.handlePreflight)
	mux.HandleFunc("GET /confirm/{token}", s.handleConfirm) // a HEAD changes nothing
	mux.HandleFunc("GET /unsubscribe/{token}", s.handleUnsubscribePage)
	mux.HandleFunc("POST /unsubscribe/{token}", s.handleUnsubscribe)
	mux.HandleFunc("GET /preferences/{token}", s.handlePreferences)
	mux.HandleFunc("POST /preferences/{token}", s.handleSavePreferences)
	mux.HandleFunc("GET /data/{token}", s.handleDataPage)
	mux.HandleFunc("GET /data/{token}/export", s.handleDataExport)
	mux.HandleFunc("POST /data/{token}/delete", s.handleDataDelete)
	mux.HandleFunc("GET /c/{token}", s.handleClick)
	mux.HandleFunc("GET /archive", s.handleArchive)
	mux.HandleFunc("GET /archive/feed.xml", s.handleFeed)
	mux.HandleFunc("GET /archive/{edition}", s.handleEdition)
	mux.HandleFunc("GET /assets/{file}", s.handleAsset)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.HandleFunc("/", s.handleNotFound)

	cop := http.NewCrossOriginProtection()
	for _, o := range s.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("web: trusted origin %q: %w", o, err)
		}
	}
	// The one-click unsubscribe is authorized by its token alone: mail
	// providers post it from anywhere (RFC 8058).
	cop.AddInsecureBypassPattern("POST /unsubscribe/{token}")
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusForbidden, "Request refused", "This form was sent from another site. Please use the form on this site.")
	}))
	h := cop.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if s.prefix != "" && (r.URL.Path == s.prefix || strings.HasPrefix(r.URL.Path, s.prefix+"/")) {
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path = strings.TrimPrefix(r.URL.Path, s.prefix)
			if u.Path == "" {
				u.Path = "/"
			}
			u.RawPath = ""
			r2.URL = &u
			r = r2
		}
		h.ServeHTTP(w, r)
	}), nil
}

// Close waits for confirmation emails still being sent, at most until ctx
// ends.
func (s *Server) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.mailWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("web: confirmation emails still sending: %w", ctx.Err())
	}
}

// cspPage is the policy of every page: nothing from other hosts, no
// inline script or style, no framing, forms only to this site.
const cspPage = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// cspArchive is the policy of an archived edition: the email's own inline
// styles and its https images (the site's story pictures), no script, no
// forms.
const cspArchive = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; " +
	"form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", cspPage)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // tokens are in URLs: never leak them
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// clientIP is the client's address: the trusted proxy header when one is
// configured and present, else the TCP peer.
func (s *Server) clientIP(r *http.Request) string {
	if s.ClientIPHeader != "" {
		if v := r.Header.Get(s.ClientIPHeader); v != "" {
			if i := strings.LastIndexByte(v, ','); i >= 0 {
				v = v[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(v)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// addressKey is the throttle key of an address: a hash, so that the
// throttle bucket holds no address in clear.
func addressKey(email string) string {
	sum := sha256.Sum256([]byte("confirm-mail\x00" + email))
	return "confirm:" + hex.EncodeToString(sum[:16])
}

// url returns the absolute public URL of path (which starts with "/").
func (s *Server) url(path string) string { return s.BaseURL + path }

// local returns the same-origin path of path, for links inside pages.
func (s *Server) local(path string) string { return s.prefix + path }

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := s.Store.Lists(); err != nil {
		s.log().Error("readyz: store", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "store unavailable")
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, s.local("/subscribe"), http.StatusSeeOther)
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
}

func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	b, ctype, ok := asset(r.PathValue("file"))
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

type mailMsg struct {
	msg *mail.Msg
	key string // throttle key, cleared when sending fails
}
