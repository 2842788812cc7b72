package main

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/time/rate"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// engine wires the delivery engine from the config and the open store.
// With dryRunDir set, messages are written there as .eml files instead of
// being sent.
func (m *Main) engine(dryRunDir string) (*delivery.Engine, error) {
	secret := []byte(m.cfg.Secret)
	if len(secret) == 0 {
		var err error
		if secret, err = m.store.Secret(); err != nil {
			return nil, err
		}
	}
	signer, err := subscribers.NewSigner(secret)
	if err != nil {
		return nil, fmt.Errorf("config: secret: %w", err)
	}
	r, err := render.New(m.cfg.Templates.Dir)
	if err != nil {
		return nil, err
	}
	e := &delivery.Engine{
		Store:             m.store,
		Renderer:          r,
		Signer:            signer,
		Clock:             digest.SystemClock{},
		Log:               m.log,
		BaseURL:           m.cfg.HTTP.BaseURL,
		UnsubscribeMailto: m.cfg.Mail.UnsubscribeMailto,
		BounceAddress:     m.cfg.Mail.BounceAddress,
		Workers:           m.cfg.SMTP.Workers,
		Brand: render.Brand{
			SiteName: m.cfg.Site.Name, SiteURL: m.cfg.Site.URL, LogoURL: m.cfg.Site.LogoURL,
			PostalAddress: m.cfg.Site.PostalAddress, Footer: m.cfg.Site.Footer, Lang: m.cfg.Site.Lang,
			AccentColor: m.cfg.Site.AccentColor, LinkColor: m.cfg.Site.LinkColor,
		},
		MaxRetries:        m.cfg.SMTP.Retries,
		PauseErrors:       m.cfg.SMTP.PauseErrors,
		DomainConcurrency: m.cfg.SMTP.DomainConcurrency,
		TrackClicks:       m.cfg.Tracking.Clicks,
		History:           m.cfg.Schedule.engineHistory(),
	}
	if m.cfg.DKIM.Domain != "" {
		if e.DKIM, err = mailer.LoadDKIM(m.cfg.DKIM.Domain, m.cfg.DKIM.Selector, m.cfg.DKIM.KeyFile); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if m.cfg.SMTP.Rate > 0 {
		burst := m.cfg.SMTP.Burst
		if burst == 0 {
			burst = max(1, int(m.cfg.SMTP.Rate))
		}
		e.Limiter = rate.NewLimiter(rate.Limit(m.cfg.SMTP.Rate), burst)
	}
	if dryRunDir != "" {
		if err := os.MkdirAll(dryRunDir, 0o755); err != nil {
			return nil, err
		}
		var n atomic.Int64
		e.Dial = func(context.Context) (delivery.Transport, error) { return &emlTransport{dir: dryRunDir, n: &n}, nil }
		return e, nil
	}
	smtpCfg := mailer.Config{
		Host: m.cfg.SMTP.Host, Port: m.cfg.SMTP.Port, Username: m.cfg.SMTP.Username, Password: m.cfg.SMTP.Password,
		TLS: m.cfg.SMTP.TLS, Timeout: m.cfg.SMTP.Timeout.Duration, HELO: m.cfg.SMTP.HELO,
	}
	if err := smtpCfg.Validate(); err != nil {
		return nil, err
	}
	e.Dial = delivery.SMTPDialer(smtpCfg)
	return e, nil
}

// emlTransport writes each message to a .eml file named after its
// recipient: the dry run of a send.
type emlTransport struct {
	dir string
	n   *atomic.Int64
}

func (t *emlTransport) Send(_ context.Context, env mailer.Envelope, parts ...[]byte) error {
	if len(env.To) == 0 {
		return fmt.Errorf("dry run: message without recipient")
	}
	_, err := mailer.WriteEMLBytes(t.dir, fmt.Sprintf("%06d-%s", t.n.Add(1), env.To[0]), parts...)
	return err
}

func (t *emlTransport) Close() error { return nil }
