package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"newsdigest/subscribers"
)

// BounceConfig is the bounce and complaint processing.
type BounceConfig struct {
	// Addr is where serve listens for bounce mail over SMTP (the bounce
	// domain's MX, or a relay forwarding to it); empty: no listener.
	Addr string `toml:"addr"`
	// SoftLimit soft bounces within SoftWindow suppress an address.
	SoftLimit  int      `toml:"soft_limit"`
	SoftWindow Duration `toml:"soft_window"`
	// KeepDir is where the listener saves mail that is no usable report;
	// empty: a folder "bounces-kept" next to the database.
	KeepDir string `toml:"keep_dir"`
	// RequireToken makes the listener act only on reports carrying a valid
	// VERP token, so that a forged report cannot suppress anyone.
	RequireToken bool `toml:"require_token"`
}

// secretFiles are the secrets that may come from files: the key of the
// value, of the file, and pointers to both. A file's content is the value,
// without a final line break; setting both the value and the file (in the
// config or the environment) is an error. The files are read once, at
// start.
func (c *Config) secretFiles() []struct {
	key, fileKey string
	val, file    *string
} {
	return []struct {
		key, fileKey string
		val, file    *string
	}{
		{"secret", "secret_file", &c.Secret, &c.SecretFile},
		{"smtp.password", "smtp.password_file", &c.SMTP.Password, &c.SMTP.PasswordFile},
		{"admin.token", "admin.token_file", &c.Admin.Token, &c.Admin.TokenFile},
	}
}

// readSecretFiles fills each secret from its file.
func (c *Config) readSecretFiles() error {
	var errs []error
	for _, s := range c.secretFiles() {
		if *s.file == "" {
			continue
		}
		if *s.val != "" {
			errs = append(errs, fmt.Errorf("config: %s: both %s and %s are set; keep one", s.fileKey, s.key, s.fileKey))
			continue
		}
		b, err := os.ReadFile(*s.file)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", s.fileKey, err))
			continue
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			errs = append(errs, fmt.Errorf("config: %s: %s is empty", s.fileKey, *s.file))
			continue
		}
		*s.val = v
	}
	return errors.Join(errs...)
}

// validateOps checks the bounce, VERP and lifecycle keys.
func (c Config) validateOps() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.ShutdownGrace.Duration <= 0 {
		bad("shutdown_grace", "must be positive (e.g. \"30s\")")
	}
	if c.Mail.BounceAddress != "" {
		if err := subscribers.CheckBounceAddress(c.Mail.BounceAddress); err != nil {
			bad("mail.bounce_address", "%v", err)
		}
	}
	if c.Bounce.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Bounce.Addr); err != nil {
			bad("bounce.addr", "%q is not host:port (e.g. 0.0.0.0:25)", c.Bounce.Addr)
		}
	}
	if c.Bounce.SoftLimit < 1 || c.Bounce.SoftLimit > 100 {
		bad("bounce.soft_limit", "%d is not between 1 and 100", c.Bounce.SoftLimit)
	}
	if c.Bounce.SoftWindow.Duration <= 0 {
		bad("bounce.soft_window", "must be positive (e.g. \"168h\")")
	}
	return errs
}

// bounceKeepDir is where the listener keeps unusable messages.
func (c Config) bounceKeepDir() string {
	if c.Bounce.KeepDir != "" {
		return c.Bounce.KeepDir
	}
	return filepath.Join(filepath.Dir(c.DB), "bounces-kept")
}

// redacted is the placeholder of a secret that is set.
const redacted = "[redacted]"

// Redacted returns a copy with every secret replaced by "[redacted]" (or
// left empty when unset): what --json output and logs may show.
func (c Config) Redacted() Config {
	for _, s := range c.secretFiles() {
		if *s.val != "" {
			*s.val = redacted
		}
	}
	return c
}

// LogValue makes slog print the redacted configuration, so that logging a
// Config never leaks a secret.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	var attrs []slog.Attr
	walkConfig(reflect.ValueOf(&r).Elem(), "", func(key string, f reflect.Value) error {
		attrs = append(attrs, slog.Any(key, f.Interface()))
		return nil
	})
	return slog.GroupValue(attrs...)
}

// Settings is the configuration as a flat map of key to value, redacted,
// for config check --json.
func (c Config) Settings() map[string]any {
	r := c.Redacted()
	out := make(map[string]any)
	walkConfig(reflect.ValueOf(&r).Elem(), "", func(key string, f reflect.Value) error {
		v := f.Interface()
		if d, ok := v.(Duration); ok {
			v = d.String()
		}
		out[key] = v
		return nil
	})
	return out
}
