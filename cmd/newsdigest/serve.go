package main

import (
	"context"
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

	"newsdigest/digest"
	"newsdigest/digest/adminapi"
	"newsdigest/digest/mailer"
	"newsdigest/digest/poller"
	"newsdigest/digest/render"
	"newsdigest/digest/web"
	"newsdigest/subscribers"
)

// shutdownTimeout bounds the graceful stop of each component.
const shutdownTimeout = 15 * time.Second

func runServe(ctx context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "serve", "",
		"Run the daemon: the subscriber pages on http.addr and the admin API on admin.addr (which needs admin.token). Stops gracefully on SIGINT or SIGTERM.")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	if err := m.loadConfig(); err != nil {
		return err
	}
	if m.cfg.Admin.Token == "" {
		return errors.New("serve: admin.token is not set: the admin API needs one; set [admin] token in the config or NEWSDIGEST_ADMIN_TOKEN (e.g. from: openssl rand -hex 32)")
	}
	m.create = true
	if err := m.open(); err != nil {
		return err
	}
	comps, err := m.daemon()
	if err != nil {
		return err
	}
	return runComponents(ctx, m.log, comps)
}

// component is one long-running part of the daemon. run blocks until ctx
// is cancelled (then it stops gracefully and returns nil) or the component
// fails. The daemon is the list that daemon() builds: the scheduler, the
// feed poller, the bounce listener and /metrics join it as further
// components, each started with the same context and stopped together.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// daemon builds the daemon's components from the config and the open store.
func (m *Main) daemon() ([]component, error) {
	signer, err := m.signer()
	if err != nil {
		return nil, err
	}
	r, err := render.New(m.cfg.Templates.Dir)
	if err != nil {
		return nil, err
	}
	sys, err := render.NewSystem(m.cfg.Templates.Dir)
	if err != nil {
		return nil, err
	}
	smtpCfg := mailer.Config{
		Host: m.cfg.SMTP.Host, Port: m.cfg.SMTP.Port, Username: m.cfg.SMTP.Username, Password: m.cfg.SMTP.Password,
		TLS: m.cfg.SMTP.TLS, Timeout: m.cfg.SMTP.Timeout.Duration, HELO: m.cfg.SMTP.HELO,
	}
	if err := smtpCfg.Validate(); err != nil {
		return nil, err
	}
	ops, err := m.newOps(smtpCfg)
	if err != nil {
		return nil, err
	}
	pages := &web.Server{
		Store:          observedStore{m.store, ops.met},
		Signer:         signer,
		Renderer:       r,
		System:         sys,
		Send:           sendOne(smtpCfg),
		Clock:          digest.SystemClock{},
		Log:            m.log.With("component", "web"),
		BaseURL:        m.cfg.HTTP.BaseURL,
		Brand:          m.brand(),
		ConfirmTTL:     m.cfg.HTTP.ConfirmTTL.Duration,
		ClientIPHeader: m.cfg.HTTP.ClientIPHeader,
		TrustedOrigins: splitList(m.cfg.HTTP.TrustedOrigins),

		UnsubscribeMailto: m.cfg.Mail.UnsubscribeMailto,
		BounceAddress:     m.cfg.Mail.BounceAddress,
		SubscriberChanged: ops.met.SubscriberChanged,
	}
	if m.cfg.Tracking.Clicks {
		pages.Clicks = m.store
	}
	pub, err := pages.Handler()
	if err != nil {
		return nil, err
	}
	var feedPoller *poller.Poller
	if m.cfg.Feeds.Poll {
		feedPoller = m.daemonPoller(ops)
	}
	sched, sends, schedComp, err := m.schedulerComponent(ops)
	if err != nil {
		return nil, err
	}
	admin := &adminapi.Server{
		Trigger: sched.Trigger,
		Editor:  engineEditor{sends.engine},
		Tester:  engineTester{sends.engine},
		Runner:  sends,
		Service: wakePoller{adminapi.Direct{Store: m.store}, feedPoller},
		Token:   m.cfg.Admin.Token,
		DBPath:  absPath(m.store.Path()),
		Version: version,
		Log:     m.log.With("component", "admin"),
	}
	adm, err := admin.Handler()
	if err != nil {
		return nil, fmt.Errorf("config: admin.token: %w", err)
	}
	if adm, err = m.adminHandler(ops, adm); err != nil {
		return nil, err
	}
	pub = withReadyz(pub, readiness(m.store, ops.probe, m.log.With("component", "web")))
	webComp, err := httpComponent("web", m.cfg.HTTP.Addr, pub, m.log)
	if err != nil {
		return nil, fmt.Errorf("http.addr: %w", err)
	}
	adminComp, err := httpComponent("admin", m.cfg.Admin.Addr, adm, m.log)
	if err != nil {
		webComp.close()
		return nil, fmt.Errorf("admin.addr: %w", err)
	}
	webComp.grace, adminComp.grace = m.cfg.ShutdownGrace.Duration, m.cfg.ShutdownGrace.Duration
	bounceComp, err := m.bounceComponent(ops)
	if err != nil {
		webComp.close()
		adminComp.close()
		return nil, err
	}
	m.log.Info("serving", "pages", "http://"+webComp.addr, "base_url", m.cfg.HTTP.BaseURL,
		"admin_api", "http://"+adminComp.addr+"/api/", "metrics", "http://"+adminComp.addr+"/metrics", "db", m.store.Path())
	comps := []component{
		webComp.component(func(ctx context.Context) error { return pages.Close(ctx) }),
		adminComp.component(nil),
	}
	if bounceComp != nil {
		comps = append(comps, *bounceComp)
	}
	if feedPoller != nil {
		comps = append(comps, component{name: "poller", run: feedPoller.Run})
	}
	comps = append(comps, *schedComp, sends.component())
	return comps, nil
}

// runComponents runs every component until ctx ends or one fails; then it
// stops all of them and returns the first failure.
func runComponents(ctx context.Context, log *slog.Logger, comps []component) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(comps))
	for i, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("%s: panic: %v", c.name, p)
					cancel()
				}
			}()
			if err := c.run(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", c.name, err)
				log.Error("component failed; stopping", "component", c.name, "err", err)
				cancel()
			}
		}()
	}
	<-ctx.Done()
	log.Info("stopping")
	wg.Wait()
	log.Info("stopped")
	return errors.Join(errs...)
}

// listening is an HTTP server bound to its address, not yet serving.
type listening struct {
	name string
	addr string
	ln   net.Listener
	srv  *http.Server
	// grace bounds the graceful stop (shutdown_grace); 0 = shutdownTimeout.
	grace time.Duration
}

// httpComponent binds addr now, so that a busy port fails the start with a
// clear message rather than later.
func httpComponent(name, addr string, h http.Handler, log *slog.Logger) (*listening, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &listening{name: name, addr: ln.Addr().String(), ln: ln, srv: srv}, nil
}

func (l *listening) close() { l.ln.Close() }

// component serves until ctx ends, then shuts down: no new connections,
// requests in flight finish (up to shutdownTimeout); then after runs.
func (l *listening) component(after func(context.Context) error) component {
	return component{name: l.name, run: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- l.srv.Serve(l.ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		grace := l.grace
		if grace <= 0 {
			grace = shutdownTimeout
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		err := l.srv.Shutdown(sctx)
		if after != nil {
			err = errors.Join(err, after(sctx))
		}
		if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = errors.Join(err, e)
		}
		return err
	}}
}

// sendOne sends one system message over its own SMTP session.
func sendOne(cfg mailer.Config) web.SendFunc {
	return func(ctx context.Context, msg *mail.Msg) error {
		c, err := mailer.Dial(ctx, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Send(ctx, msg)
	}
}

// signer makes the token signer from the config's secret, else the one
// kept in the database.
func (m *Main) signer() (*subscribers.Signer, error) {
	secret := []byte(m.cfg.Secret)
	if len(secret) == 0 {
		var err error
		if secret, err = m.store.Secret(); err != nil {
			return nil, err
		}
	}
	s, err := subscribers.NewSigner(secret)
	if err != nil {
		return nil, fmt.Errorf("config: secret: %w", err)
	}
	return s, nil
}

func (m *Main) brand() render.Brand {
	return render.Brand{
		SiteName: m.cfg.Site.Name, SiteURL: m.cfg.Site.URL, LogoURL: m.cfg.Site.LogoURL,
		PostalAddress: m.cfg.Site.PostalAddress, Footer: m.cfg.Site.Footer, Lang: m.cfg.Site.Lang,
		AccentColor: m.cfg.Site.AccentColor,
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validateServe checks the daemon's keys.
func (c Config) validateServe() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if c.HTTP.ConfirmTTL.Duration <= 0 {
		return bad("http.confirm_ttl", "must be positive (e.g. \"168h\")")
	}
	for _, kv := range []struct{ key, v string }{{"http.addr", c.HTTP.Addr}, {"admin.addr", c.Admin.Addr}} {
		if _, _, err := net.SplitHostPort(kv.v); err != nil {
			return bad(kv.key, "%q is not host:port (e.g. 127.0.0.1:8080)", kv.v)
		}
	}
	if c.Admin.Token != "" && len(c.Admin.Token) < adminapi.MinTokenLen {
		return bad("admin.token", "must be at least %d characters (e.g. from: openssl rand -hex 32)", adminapi.MinTokenLen)
	}
	if strings.ContainsFunc(c.Admin.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad("admin.token", "must not contain spaces or control characters")
	}
	if h := c.HTTP.ClientIPHeader; h != "" && strings.ContainsFunc(h, func(r rune) bool {
		return !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		return bad("http.client_ip_header", "%q is not a header name", h)
	}
	for _, o := range splitList(c.HTTP.TrustedOrigins) {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return bad("http.trusted_origins", "%q is not an origin such as https://news.example.org", o)
		}
	}
	return nil
}
