package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"newsdigest/digest/adminapi"
	"newsdigest/digest/boltstore"
)

// openAdmin loads the config and reaches the admin service that the
// subscribers, lists, feeds, articles, editions, preview and check
// commands use: the database file
// directly when no process holds it, else the admin API of the daemon
// that holds it. Either way the commands see the same adminapi.Service.
func (m *Main) openAdmin() error {
	cl, err := m.openOrDaemon()
	switch {
	case err != nil:
		return err
	case cl != nil:
		m.admin = cl
	default:
		m.admin = adminapi.Direct{Store: m.store}
	}
	return nil
}

// openOrDaemon is open for the commands that can also work through the
// daemon (openAdmin, send): it opens the database, or, when a process
// holds it, returns a client of the daemon that holds it (m.store stays
// nil). When no daemon answers, it waits for the file as open does
// (another command may hold it for a moment).
func (m *Main) openOrDaemon() (*adminapi.Client, error) {
	if err := m.loadConfig(); err != nil {
		return nil, err
	}
	if err := m.checkDBExists(); err != nil {
		return nil, err
	}
	st, err := boltstore.Open(m.cfg.DB, boltstore.Options{Timeout: -1})
	if err == nil {
		m.store = st
		return nil, nil
	}
	if !errors.Is(err, boltstore.ErrLocked) {
		return nil, err
	}
	cl, apiErr := m.adminClient()
	if apiErr == nil {
		return cl, nil
	}
	if st, err = boltstore.Open(m.cfg.DB, boltstore.Options{Timeout: time.Second}); err == nil {
		m.store = st
		return nil, nil
	}
	if errors.Is(err, boltstore.ErrLocked) {
		return nil, fmt.Errorf("%w; and the daemon's admin API cannot be used: %v", err, apiErr)
	}
	return nil, err
}

// adminClient returns a client of the admin API at admin.addr, after
// checking that the daemon answers, accepts the token and holds this
// configuration's database.
func (m *Main) adminClient() (*adminapi.Client, error) {
	if m.cfg.Admin.Token == "" {
		return nil, errors.New("admin.token (NEWSDIGEST_ADMIN_TOKEN) is not set")
	}
	host, port, err := net.SplitHostPort(m.cfg.Admin.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin.addr %q: %w", m.cfg.Admin.Addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	probe := &adminapi.Client{BaseURL: base, Token: m.cfg.Admin.Token, HTTP: &http.Client{Timeout: 3 * time.Second}}
	p, err := probe.Ping()
	if err != nil {
		return nil, err
	}
	if p.DB != "" && !sameFile(p.DB, m.cfg.DB) {
		return nil, fmt.Errorf("the daemon at %s holds %s, not %s", base, p.DB, m.cfg.DB)
	}
	return &adminapi.Client{BaseURL: base, Token: m.cfg.Admin.Token}, nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return absPath(a) == absPath(b)
	}
	return os.SameFile(sa, sb)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
