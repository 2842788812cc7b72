package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		p := writeFile(t, "c.toml", `
db = "x.db"
[smtp]
host = "relay.example.org"
port = 587
tls = "starttls"
username = "u"
password = "p"
rate = 12.5
timeout = "10s"
[http]
base_url = "https://news.example.org"
`)
		cfg, err := LoadConfig(p, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DB != "x.db" || cfg.SMTP.Host != "relay.example.org" || cfg.SMTP.Port != 587 || cfg.SMTP.Rate != 12.5 ||
			cfg.SMTP.Timeout.Duration != 10*time.Second || cfg.HTTP.BaseURL != "https://news.example.org" {
			t.Errorf("got %+v", cfg)
		}
		if cfg.SMTP.Workers != DefaultConfig().SMTP.Workers {
			t.Errorf("workers: got %d, want the default", cfg.SMTP.Workers)
		}
	})
	t.Run("EnvWins", func(t *testing.T) {
		p := writeFile(t, "c.toml", "[smtp]\nhost = \"file.example.org\"\nport = 25\n")
		cfg, err := LoadConfig(p, true, []string{
			"NEWSDIGEST_SMTP_HOST=env.example.org", "NEWSDIGEST_SMTP_PORT=2525",
			"NEWSDIGEST_HTTP_BASE_URL=https://env.example.org", "NEWSDIGEST_DB=env.db", "NEWSDIGEST_SMTP_TLS=tls",
			"NEWSDIGEST_SMTP_TIMEOUT=5s", "PATH=/bin",
		})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.SMTP.Host != "env.example.org" || cfg.SMTP.Port != 2525 || cfg.HTTP.BaseURL != "https://env.example.org" ||
			cfg.DB != "env.db" || cfg.SMTP.TLS != "tls" || cfg.SMTP.Timeout.Duration != 5*time.Second {
			t.Errorf("got %+v", cfg)
		}
	})
	t.Run("MissingOptionalFile", func(t *testing.T) {
		if _, err := LoadConfig(filepath.Join(t.TempDir(), "none.toml"), false, nil); err != nil {
			t.Fatal(err)
		}
	})
	bad := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"MissingNamedFile", "", nil, "no such file"},
		{"UnknownKey", "[smtp]\nhots = \"x\"\n", nil, "unknown key smtp.hots"},
		{"Syntax", "[smtp\nhost=1", nil, "line 2"},
		{"WrongType", "[smtp]\nport = \"abc\"\n", nil, "smtp.port"},
		{"BadTLS", "[smtp]\ntls = \"ssl\"\n", nil, "smtp.tls"},
		{"BadPort", "[smtp]\nport = 70000\n", nil, "smtp.port"},
		{"BadBaseURL", "[http]\nbase_url = \"example.org\"\n", nil, "http.base_url"},
		{"ShortSecret", "secret = \"short\"\n", nil, "secret"},
		{"EnvBadInt", "", []string{"NEWSDIGEST_SMTP_PORT=abc"}, "NEWSDIGEST_SMTP_PORT (smtp.port)"},
		{"EnvUnknown", "", []string{"NEWSDIGEST_SMTP_HOTS=x"}, "unknown environment variable NEWSDIGEST_SMTP_HOTS"},
		{"EnvBadDuration", "", []string{"NEWSDIGEST_SMTP_TIMEOUT=10"}, "NEWSDIGEST_SMTP_TIMEOUT"},
		{"CRLFInFrom", "", []string{"NEWSDIGEST_MAIL_FROM=a@b.org\r\nBcc: x@y.org"}, "mail.from"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "missing.toml")
			if tc.file != "" {
				p = writeFile(t, "c.toml", tc.file)
			}
			_, err := LoadConfig(p, true, tc.env)
			if tc.name != "MissingNamedFile" && tc.file == "" {
				_, err = LoadConfig(p, false, tc.env)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEnvNamesFollowThePattern(t *testing.T) {
	want := map[string]string{
		"db": "NEWSDIGEST_DB", "secret": "NEWSDIGEST_SECRET", "smtp.host": "NEWSDIGEST_SMTP_HOST",
		"smtp.rate": "NEWSDIGEST_SMTP_RATE", "http.base_url": "NEWSDIGEST_HTTP_BASE_URL",
		"admin.token": "NEWSDIGEST_ADMIN_TOKEN", "admin.addr": "NEWSDIGEST_ADMIN_ADDR",
	}
	got := map[string]string{}
	for _, kv := range EnvNames() {
		got[kv[0]] = kv[1]
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
}

func TestParseFlagsAnywhere(t *testing.T) {
	var g globals
	c := newCommand(&g, "subscribers show", "EMAIL", "")
	list := c.fs.String("list", "", "")
	pos, err := c.parse([]string{"--list", "daily", "a@b.org", "--json", "--db=x.db"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 1 || pos[0] != "a@b.org" || !g.json || g.db != "x.db" || *list != "daily" {
		t.Errorf("got pos=%v json=%v db=%q list=%q", pos, g.json, g.db, *list)
	}
	if _, err := c.parse([]string{"--nope"}, nil); err == nil {
		t.Error("unknown flag accepted")
	}
}

func nowRFC1123() string { return time.Now().Add(-time.Hour).UTC().Format(time.RFC1123Z) }

// TestConfigFileReportsEveryBadKey: wrong types in the file are reported
// per key, all at once, beside unknown keys and invalid values, each line
// naming the file; the well-typed keys of the same file are still read.
func TestConfigFileReportsEveryBadKey(t *testing.T) {
	p := writeFile(t, "bad.toml", `db = 7
[smtp]
host = "relay.example.org"
port = "abc"
workers = "x"
rate = 5
tls = "ssl"
timeout = 30
hots = "typo"
[log]
level = true
[schedule]
tick = "5"
[feeds]
interval = [1, 2]
[tracking]
clicks = "yes"
[site]
name = "A\nB"
[nope]
x = 1
`)
	cfg, err := LoadConfig(p, true, []string{"NEWSDIGEST_HTTP_BASE_URL=example.org"})
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		"config " + p + `: db: want a string, got 7`,
		"config " + p + `: smtp.port: want an integer, got "abc"`,
		"config " + p + `: smtp.workers: want an integer, got "x"`,
		"config " + p + `: smtp.timeout: want a duration such as "30s", got 30`,
		"config " + p + `: log.level: want a string, got true`,
		"config " + p + `: schedule.tick: want a duration such as "30s": time: missing unit in duration "5"`,
		"config " + p + `: feeds.interval: want a duration such as "30s", got an array`,
		"config " + p + `: tracking.clicks: want true or false, got "yes"`,
		"config " + p + `: unknown key smtp.hots, nope, nope.x`,
		"config " + p + `: smtp.tls: "ssl" is not one of none, starttls, tls`,
		`config: http.base_url: "example.org" is not an absolute http(s) URL (set by NEWSDIGEST_HTTP_BASE_URL)`,
		"config " + p + `: site.name: must not contain line breaks`,
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing line %q", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d lines, want %d:\n%s", len(got), len(want), err)
	}
	if cfg.SMTP.Host != "relay.example.org" || cfg.SMTP.Rate != 5 || cfg.SMTP.Port != 25 {
		t.Errorf("well-typed keys not read or bad ones not left at their defaults: host %q rate %g port %d", cfg.SMTP.Host, cfg.SMTP.Rate, cfg.SMTP.Port)
	}

	t.Run("SectionNotATable", func(t *testing.T) {
		p := writeFile(t, "c.toml", "smtp = 5\n[log]\nlevel = \"debug\"\n")
		cfg, err := LoadConfig(p, true, nil)
		if err == nil || err.Error() != "config "+p+": smtp: want a table ([smtp]), got 5" {
			t.Fatalf("err = %v", err)
		}
		if cfg.Log.Level != "debug" {
			t.Errorf("log.level = %q, want debug", cfg.Log.Level)
		}
	})
	t.Run("CLI", func(t *testing.T) {
		c := newCLI(t, "")
		code, _, errs := c.run("config", "check", "--config", writeFile(t, "bad.toml", "workers = 1\n[smtp]\nport = \"abc\"\nworkers = \"x\"\n"))
		lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(errs, "newsdigest: ")), "\n")
		if code == 0 || len(lines) != 3 || !strings.HasSuffix(lines[0], `bad.toml: smtp.port: want an integer, got "abc"`) ||
			!strings.HasSuffix(lines[1], `bad.toml: smtp.workers: want an integer, got "x"`) || !strings.HasSuffix(lines[2], "bad.toml: unknown key workers") {
			t.Errorf("exit %d, stderr:\n%s", code, errs)
		}
	})
}
