package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testSecretValue   = "s3cret-hmac-key-0123456789abcdef-XYZ"
	testPasswordValue = "smtp-pa55word-never-shown"
	testTokenValue    = "admin-token-never-shown-0123"
)

func TestConfigCheck(t *testing.T) {
	t.Run("Good", func(t *testing.T) {
		c := newCLI(t, "")
		p := c.file("good.toml", `
secret = "`+testSecretValue+`"
shutdown_grace = "45s"
[smtp]
host = "relay.example.org"
username = "digest"
password = "`+testPasswordValue+`"
[admin]
token = "`+testTokenValue+`"
[mail]
bounce_address = "bounces@bounce.example.org"
[bounce]
addr = "127.0.0.1:2525"
soft_limit = 5
soft_window = "72h"
`)
		out := c.ok("config", "check", "--config", p)
		if !strings.Contains(out, "config OK") {
			t.Errorf("out = %q", out)
		}
		out = c.ok("config", "check", "--config", p, "--json")
		for _, secret := range []string{testSecretValue, testPasswordValue, testTokenValue} {
			if strings.Contains(out, secret) {
				t.Errorf("--json output shows a secret:\n%s", out)
			}
		}
		var res struct {
			OK       bool           `json:"ok"`
			Settings map[string]any `json:"settings"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if !res.OK || res.Settings["secret"] != redacted || res.Settings["smtp.password"] != redacted ||
			res.Settings["bounce.soft_limit"] != float64(5) || res.Settings["shutdown_grace"] != "45s" ||
			res.Settings["mail.bounce_address"] != "bounces@bounce.example.org" {
			t.Errorf("settings = %v", res.Settings)
		}
	})
	t.Run("BadNamesEveryKey", func(t *testing.T) {
		c := newCLI(t, "")
		p := c.file("bad.toml", `
shutdown_grace = "0s"
colour = "red"
[smtp]
port = 0
tls = "ssl"
[bounce]
soft_limit = 0
addr = "nope"
[mail]
bounce_address = "a-very-long-bounce-local-part@example.org"
`)
		code, _, errs := c.run("config", "check", "--config", p)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		for _, key := range []string{"unknown key colour", "smtp.port", "smtp.tls", "bounce.soft_limit", "bounce.addr", "mail.bounce_address", "shutdown_grace"} {
			if !strings.Contains(errs, key) {
				t.Errorf("stderr does not name %s:\n%s", key, errs)
			}
		}
		code, out, _ := c.run("config", "check", "--config", p, "--json")
		var res struct {
			OK     bool     `json:"ok"`
			Errors []string `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.OK || len(res.Errors) < 7 {
			t.Errorf("--json: exit %d, %+v, %v\n%s", code, res, err, out)
		}
	})
	t.Run("BadEnvNamesEveryVariable", func(t *testing.T) {
		c := newCLI(t, "")
		c.environ = append(c.environ, "NEWSDIGEST_BOUNCE_SOFT_LIMIT=many", "NEWSDIGEST_SMTP_PORT=x", "NEWSDIGEST_NO_SUCH=1")
		_, _, errs := c.run("config", "check")
		for _, want := range []string{"NEWSDIGEST_BOUNCE_SOFT_LIMIT (bounce.soft_limit)", "NEWSDIGEST_SMTP_PORT (smtp.port)", "unknown environment variable NEWSDIGEST_NO_SUCH"} {
			if !strings.Contains(errs, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errs)
			}
		}
	})
}

func TestConfigEnvWinsForNewKeys(t *testing.T) {
	p := writeFile(t, "c.toml", "shutdown_grace = \"10s\"\n[bounce]\nsoft_limit = 2\naddr = \"127.0.0.1:25\"\n[mail]\nbounce_address = \"b@file.example.org\"\n")
	cfg, err := LoadConfig(p, true, []string{
		"NEWSDIGEST_SHUTDOWN_GRACE=1m", "NEWSDIGEST_BOUNCE_SOFT_LIMIT=7", "NEWSDIGEST_BOUNCE_SOFT_WINDOW=24h",
		"NEWSDIGEST_BOUNCE_ADDR=", "NEWSDIGEST_MAIL_BOUNCE_ADDRESS=b@env.example.org", "NEWSDIGEST_BOUNCE_REQUIRE_TOKEN=false",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ShutdownGrace.Duration != time.Minute || cfg.Bounce.SoftLimit != 7 || cfg.Bounce.SoftWindow.Duration != 24*time.Hour ||
		cfg.Bounce.Addr != "" || cfg.Mail.BounceAddress != "b@env.example.org" || cfg.Bounce.RequireToken {
		t.Errorf("got %+v", cfg)
	}
	// Every key has an environment name.
	names := map[string]bool{}
	for _, kv := range EnvNames() {
		names[kv[1]] = true
	}
	for _, want := range []string{"NEWSDIGEST_SECRET_FILE", "NEWSDIGEST_SMTP_PASSWORD_FILE", "NEWSDIGEST_ADMIN_TOKEN_FILE", "NEWSDIGEST_BOUNCE_KEEP_DIR"} {
		if !names[want] {
			t.Errorf("no env override %s", want)
		}
	}
}

func TestConfigSecretFiles(t *testing.T) {
	dir := t.TempDir()
	secret := writeFile(t, "secret", testSecretValue+"\n")
	pw := writeFile(t, "pw", testPasswordValue+"\r\n")
	tok := writeFile(t, "tok", testTokenValue)
	cfg, err := LoadConfig("", false, []string{
		"NEWSDIGEST_SECRET_FILE=" + secret, "NEWSDIGEST_SMTP_PASSWORD_FILE=" + pw, "NEWSDIGEST_SMTP_USERNAME=u",
		"NEWSDIGEST_ADMIN_TOKEN_FILE=" + tok,
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Secret != testSecretValue || cfg.SMTP.Password != testPasswordValue || cfg.Admin.Token != testTokenValue {
		t.Errorf("secrets not read from files: %q %q %q", cfg.Secret, cfg.SMTP.Password, cfg.Admin.Token)
	}
	_, err = LoadConfig("", false, []string{
		"NEWSDIGEST_SECRET=" + testSecretValue, "NEWSDIGEST_SECRET_FILE=" + secret,
		"NEWSDIGEST_ADMIN_TOKEN_FILE=" + filepath.Join(dir, "missing"),
	})
	if err == nil || !strings.Contains(err.Error(), "secret_file: both secret and secret_file") || !strings.Contains(err.Error(), "admin.token_file") {
		t.Errorf("err = %v", err)
	}
}

// TestSecretsAbsentFromLogs runs commands with debug logs, secrets in the
// environment and in files, and a failing SMTP login, and looks for the
// secrets in everything printed.
func TestSecretsAbsentFromLogs(t *testing.T) {
	c := newCLI(t, "127.0.0.1:1") // nothing listens: the send fails
	pw := c.file("pw", testPasswordValue)
	c.environ = append(c.environ, "NEWSDIGEST_LOG_LEVEL=debug", "NEWSDIGEST_SECRET="+testSecretValue,
		"NEWSDIGEST_SMTP_USERNAME=digest", "NEWSDIGEST_SMTP_PASSWORD_FILE="+pw, "NEWSDIGEST_ADMIN_TOKEN="+testTokenValue,
		"NEWSDIGEST_LOG_FORMAT=json")
	var all strings.Builder
	for _, args := range [][]string{
		{"config", "check"}, {"config", "check", "--json"},
		{"lists", "add", "daily", "--from", "G <d@g.example>"}, {"subscribers", "add", "ann@example.org"},
		{"send", "--to", "ann@example.org"}, {"serve", "--no-such-flag"},
	} {
		_, out, errs := c.run(args...)
		all.WriteString(out + errs)
	}
	// The logger itself redacts a Config.
	var buf syncBuffer
	cfg, _ := LoadConfig("", false, c.environ)
	newLogger(&buf, LogConfig{Level: "debug", Format: "json"}).Info("config", "cfg", cfg)
	newLogger(&buf, LogConfig{Level: "debug", Format: "text"}).Info("config", "cfg", cfg)
	all.WriteString(buf.String())
	if !strings.Contains(buf.String(), "smtp.host") {
		t.Errorf("config not logged at all: %s", buf.String())
	}
	for _, secret := range []string{testSecretValue, testPasswordValue, testTokenValue} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("a secret appears in the output:\n%s", all.String())
		}
	}
}
