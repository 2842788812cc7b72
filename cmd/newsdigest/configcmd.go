package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

func runConfig(ctx context.Context, m *Main, args []string) error {
	return subcommand(ctx, m, "config", args, map[string]runner{"check": configCheck})
}

func configCheck(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "config check", "[--config FILE]", "Validate the configuration file and environment overrides; name each bad key.")
	_, err := c.parseArgs(args, m.Stdout, 0, 0)
	if err != nil {
		return err
	}
	// Which file is read: --config's (it must exist), or newsdigest.toml
	// when there is one (LoadConfig reads it then).
	src, read := m.g.config, true
	if src == "" {
		src = "newsdigest.toml"
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			read = false
		}
	}
	what := src
	if !read {
		what = "no config file (newsdigest.toml not found), defaults"
	}
	if err := m.loadConfig(); err != nil {
		if m.g.json {
			// Every bad key, one per entry; secrets are never echoed.
			m.printJSON(map[string]any{"ok": false, "config": src, "config_read": read, "errors": strings.Split(err.Error(), "\n")})
		}
		return err
	}
	if m.g.json {
		// The effective settings, secrets redacted.
		return m.printJSON(map[string]any{"ok": true, "config": src, "config_read": read, "settings": m.cfg.Settings()})
	}
	fmt.Fprintf(m.Stdout, "config OK: %s with environment overrides; smtp %s:%d (%s), base URL %s, db %s\n",
		what, m.cfg.SMTP.Host, m.cfg.SMTP.Port, m.cfg.SMTP.TLS, m.cfg.HTTP.BaseURL, m.cfg.DB)
	return nil
}
