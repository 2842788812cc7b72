package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"newsdigest/digest/adminapi"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/bounce"
	"newsdigest/digest/mailer"
	"newsdigest/digest/metrics"
)

// The operations side of the daemon: /metrics, /healthz and /readyz on the
// admin address, the backup, events and bounce endpoints of the admin API,
// and the optional bounce listener.

// observedStore is the store of the subscriber pages. (They report
// subscribes, confirms and unsubscribes to the metrics themselves, through
// web.Server.SubscriberChanged.)
type observedStore struct {
	*boltstore.Store
	met *metrics.Metrics
}

// DeleteSubscriber deletes the subscriber and their bounce and complaint
// events (self-service deletion of one's own data).
func (s observedStore) DeleteSubscriber(email string) error {
	if err := s.Store.DeleteSubscriber(email); err != nil {
		return err
	}
	return s.Store.DeleteEvents(email)
}

// smtpProbe answers whether the SMTP relay takes a session (connect,
// EHLO, TLS, AUTH), remembering the answer for a while so that frequent
// probes do not load the relay.
type smtpProbe struct {
	cfg   mailer.Config
	every time.Duration

	mu   sync.Mutex
	last time.Time
	err  error
}

func (p *smtpProbe) check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.last.IsZero() && time.Since(p.last) < p.every {
		return p.err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := mailer.Dial(ctx, p.cfg)
	if err == nil {
		c.Close()
	}
	p.last, p.err = time.Now(), err
	return err
}

// readiness serves /readyz: 200 when the store answers and the SMTP relay
// takes a session, else 503 naming what is wrong.
func readiness(st *boltstore.Store, probe *smtpProbe, log interface {
	Error(string, ...any)
}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if _, err := st.Lists(); err != nil {
			log.Error("readyz: store", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "store unavailable")
			return
		}
		if err := probe.check(r.Context()); err != nil {
			log.Error("readyz: smtp", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "smtp relay unavailable")
			return
		}
		fmt.Fprintln(w, "ready")
	}
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// withReadyz serves GET …/readyz with ready and everything else with h
// (the public pages, whose own /readyz checks the store only).
func withReadyz(h http.Handler, ready http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && (r.URL.Path == "/readyz" || len(r.URL.Path) > 7 && r.URL.Path[len(r.URL.Path)-7:] == "/readyz") {
			ready(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ops is what daemon() adds for operations.
type ops struct {
	met       *metrics.Metrics
	probe     *smtpProbe
	processor *bounce.Processor
}

func (m *Main) newOps(smtpCfg mailer.Config) (*ops, error) {
	o := &ops{met: metrics.New(), probe: &smtpProbe{cfg: smtpCfg, every: 15 * time.Second}}
	p, err := m.newBounceProcessor(true)
	if err != nil {
		return nil, err
	}
	p.Observe = func(k bounce.Kind) { o.met.Bounce(string(k)) }
	o.processor = p
	return o, nil
}

// adminHandler mounts /metrics, /healthz, /readyz and the operations
// endpoints beside the admin API.
func (m *Main) adminHandler(o *ops, api http.Handler) (http.Handler, error) {
	// Reports posted by an admin are trusted like files: no token needed.
	trusted := *o.processor
	trusted.RequireToken = false
	opsAPI := &adminapi.Ops{
		Token:         m.cfg.Admin.Token,
		Backup:        m.store.Backup,
		Events:        m.store.Events,
		ProcessBounce: processBounceAPI(&trusted),
		Log:           m.log.With("component", "admin"),
	}
	oh, err := opsAPI.Handler()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, p := range opsAPI.Patterns() {
		mux.Handle(p, oh)
	}
	mux.Handle("GET /metrics", o.met.Handler())
	mux.HandleFunc("GET /healthz", healthz)
	mux.Handle("GET /readyz", readiness(m.store, o.probe, m.log.With("component", "admin")))
	mux.Handle("/", api)
	return mux, nil
}

// bounceComponent is the SMTP listener for bounce mail, or nil when
// bounce.addr is empty.
func (m *Main) bounceComponent(o *ops) (*component, error) {
	if m.cfg.Bounce.Addr == "" {
		return nil, nil
	}
	l := &bounce.Listener{Processor: o.processor, KeepDir: m.cfg.bounceKeepDir(), Log: m.log.With("component", "bounce")}
	if err := l.Listen(m.cfg.Bounce.Addr); err != nil {
		return nil, fmt.Errorf("bounce.addr: %w", err)
	}
	m.log.Info("bounce listener", "addr", l.Addr(), "keep_dir", m.cfg.bounceKeepDir(), "require_token", o.processor.RequireToken)
	grace := m.cfg.ShutdownGrace.Duration
	return &component{name: "bounce", run: func(ctx context.Context) error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		return l.Shutdown(sctx)
	}}, nil
}
