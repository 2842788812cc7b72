package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration: the TOML file, then NEWSDIGEST_…
// environment variables on top (env wins), then command-line flags.
type Config struct {
	DB     string `toml:"db"`
	Secret string `toml:"secret"` // HMAC key for all tokens; generated and kept in the db when empty
	// SecretFile names a file holding the secret (see secretFiles).
	SecretFile string `toml:"secret_file"`
	// ShutdownGrace bounds the daemon's graceful stop on SIGTERM.
	ShutdownGrace Duration `toml:"shutdown_grace"`

	SMTP      SMTPConfig      `toml:"smtp"`
	HTTP      HTTPConfig      `toml:"http"`
	Admin     AdminConfig     `toml:"admin"`
	Mail      MailConfig      `toml:"mail"`
	Site      SiteConfig      `toml:"site"`
	Templates TemplatesConfig `toml:"templates"`
	DKIM      DKIMConfig      `toml:"dkim"`
	Log       LogConfig       `toml:"log"`
	Bounce    BounceConfig    `toml:"bounce"`
	Feeds     FeedsConfig     `toml:"feeds"`
	Tracking  TrackingConfig  `toml:"tracking"`
	Schedule  ScheduleConfig  `toml:"schedule"`
}

// DKIMConfig enables DKIM signing when domain, selector and key_file are set.
type DKIMConfig struct {
	Domain   string `toml:"domain"`
	Selector string `toml:"selector"`
	KeyFile  string `toml:"key_file"` // PEM private key (RSA or Ed25519)
}

// LogConfig sets the logs' level and format.
type LogConfig struct {
	Level  string `toml:"level"`  // debug | info | warn | error
	Format string `toml:"format"` // text | json
}

// SMTPConfig is the relay newsdigest sends through.
type SMTPConfig struct {
	Host     string `toml:"host"`
	Port     int    `toml:"port"`
	Username string `toml:"username"`
	Password string `toml:"password"`
	// PasswordFile names a file holding the password (see secretFiles).
	PasswordFile string   `toml:"password_file"`
	TLS          string   `toml:"tls"`     // none | starttls | tls
	Workers      int      `toml:"workers"` // concurrent SMTP sessions
	Rate         float64  `toml:"rate"`    // messages per second, 0 = no limit
	Timeout      Duration `toml:"timeout"` // per connection and SMTP step
	HELO         string   `toml:"helo"`
	Burst        int      `toml:"burst"`       // token-bucket burst; 0 = max(1, rate)
	Retries      int      `toml:"max_retries"` // per message on 4xx and dropped connections
	// PauseErrors pauses an edition when this share (0–1) of the last 100
	// attempts failed; 0 = never pause.
	PauseErrors float64 `toml:"pause_errors"`
	// DomainConcurrency caps concurrent sessions per recipient domain; 0 = no cap.
	DomainConcurrency int `toml:"domain_concurrency"`
}

// HTTPConfig is the public web address.
type HTTPConfig struct {
	Addr    string `toml:"addr"`
	BaseURL string `toml:"base_url"` // public pages and links in emails
	// ConfirmTTL is how long a double opt-in confirmation link works.
	ConfirmTTL Duration `toml:"confirm_ttl"`
	// ClientIPHeader names the header a trusted reverse proxy sets to the
	// client's address (e.g. "X-Real-IP"); empty: the TCP peer.
	ClientIPHeader string `toml:"client_ip_header"`
	// TrustedOrigins are origins (comma-separated, e.g.
	// "https://news.example.org") whose pages may post the sign-up form
	// or its JSON to the daemon.
	TrustedOrigins string `toml:"trusted_origins"`
}

// AdminConfig is the admin API.
type AdminConfig struct {
	Addr  string `toml:"addr"`
	Token string `toml:"token"`
	// TokenFile names a file holding the token (see secretFiles).
	TokenFile string `toml:"token_file"`
}

// MailConfig holds defaults for messages.
type MailConfig struct {
	From              string `toml:"from"`               // default From of new lists
	ReplyTo           string `toml:"reply_to"`           // default Reply-To of new lists
	UnsubscribeMailto string `toml:"unsubscribe_mailto"` // mailto target of List-Unsubscribe; default the list's From
	// BounceAddress is the base of VERP return paths
	// (bounces@bounce.example.org → bounces+TOKEN@bounce.example.org);
	// empty: the return path is the list's From.
	BounceAddress string `toml:"bounce_address"`
}

// SiteConfig is the branding of emails and pages.
type SiteConfig struct {
	Name          string `toml:"name"`
	URL           string `toml:"url"`
	LogoURL       string `toml:"logo_url"`
	PostalAddress string `toml:"postal_address"`
	Footer        string `toml:"footer"`
	Lang          string `toml:"lang"`
	AccentColor   string `toml:"accent_color"` // e.g. "#0b5cad"
	LinkColor     string `toml:"link_color"`   // text links in emails, e.g. "#0b5cad"
}

// TemplatesConfig points at a directory of templates overriding the
// embedded ones, file by file.
type TemplatesConfig struct {
	Dir string `toml:"dir"`
}

// Duration is a time.Duration written as "30s" in TOML and env.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as \"30s\": %w", err)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultConfig is what newsdigest runs with before the file and env.
func DefaultConfig() Config {
	return Config{
		DB: "newsdigest.db",
		SMTP: SMTPConfig{
			Host: "localhost", Port: 25, TLS: "starttls", Workers: 4,
			Timeout: Duration{30 * time.Second},
		},
		HTTP:  HTTPConfig{Addr: "127.0.0.1:8080", BaseURL: "http://127.0.0.1:8080", ConfirmTTL: Duration{7 * 24 * time.Hour}},
		Admin: AdminConfig{Addr: "127.0.0.1:8081"},
		Mail:  MailConfig{From: "News Digest <digest@localhost.localdomain>"},
		Site:  SiteConfig{Name: "News Digest", Lang: "en", PostalAddress: "Set site.postal_address in newsdigest.toml"},
		Log:   LogConfig{Level: "info", Format: "text"},

		ShutdownGrace: Duration{30 * time.Second},
		Bounce:        BounceConfig{SoftLimit: 3, SoftWindow: Duration{7 * 24 * time.Hour}, RequireToken: true},
		Feeds:         defaultFeedsConfig(),
		Tracking:      TrackingConfig{Clicks: true},
		Schedule:      defaultScheduleConfig(),
	}
}

// LoadConfig reads path (if non-empty) over the defaults, then applies
// environment overrides from environ. mustExist says whether a missing file
// is an error (it is when the user named it).
func LoadConfig(path string, mustExist bool, environ []string) (Config, error) {
	cfg := DefaultConfig()
	var errs []error // every bad key, not just the first
	file := ""       // the file read, named in the errors about its keys
	if path != "" {
		fileErrs, err := decodeConfigFile(path, &cfg)
		switch {
		case errors.Is(err, os.ErrNotExist) && !mustExist:
		case err != nil:
			return cfg, err
		default:
			file = path
			errs = append(errs, fileErrs...)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		errs = append(errs, err)
	}
	var later []error
	if err := cfg.readSecretFiles(); err != nil {
		later = append(later, err)
	}
	later = append(later, cfg.Validate())
	errs = append(errs, relabel(later, file, environ)...)
	return cfg, errors.Join(errs...)
}

// decodeConfigFile reads the TOML file at path over cfg. A syntax error
// (or a missing file) is the returned error. Each known key whose value
// has the wrong type, and the unknown keys, come back as errors of their
// own, "config FILE: smtp.port: want an integer, got "abc"", and the
// other keys are still read: every bad key is named at once.
func decodeConfigFile(path string, cfg *Config) ([]error, error) {
	var raw map[string]any
	md, err := toml.DecodeFile(path, &raw)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("config %s: line %d: %s", path, perr.Position.Line, perr.Message)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	leaves := make(map[string]reflect.Type)
	sections := make(map[string]bool)
	walkConfig(reflect.ValueOf(&Config{}).Elem(), "", func(key string, f reflect.Value) error {
		leaves[key] = f.Type()
		for i := strings.LastIndexByte(key, '.'); i > 0; i = strings.LastIndexByte(key[:i], '.') {
			sections[key[:i]] = true
		}
		return nil
	})
	var errs []error
	var unknown []string
	var drop [][]string
	for _, k := range md.Keys() { // in file order
		key := strings.Join(k, ".")
		if slices.ContainsFunc(drop, func(d []string) bool { return len(d) < len(k) && slices.Equal(d, k[:len(d)]) }) {
			continue // inside a value already reported
		}
		v, ok := lookupTOML(raw, k)
		switch t, leaf := leaves[key]; {
		case !ok:
		case leaf:
			if msg := tomlTypeMismatch(t, v); msg != "" {
				errs = append(errs, fmt.Errorf("config %s: %s: %s", path, key, msg))
				drop = append(drop, k)
			}
		case sections[key]:
			if _, table := v.(map[string]any); !table {
				errs = append(errs, fmt.Errorf("config %s: %s: want a table ([%s]), got %s", path, key, key, tomlValue(v)))
				drop = append(drop, k)
			}
		default:
			unknown = append(unknown, k.String())
		}
	}
	if len(unknown) > 0 {
		errs = append(errs, fmt.Errorf("config %s: unknown key %s", path, strings.Join(unknown, ", ")))
	}
	for _, k := range drop {
		parent := raw
		for _, p := range k[:len(k)-1] {
			parent, _ = parent[p].(map[string]any)
		}
		delete(parent, k[len(k)-1])
	}
	// What is left has the right types: let the TOML library set it.
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(raw); err != nil {
		return errs, fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := toml.Decode(buf.String(), cfg); err != nil {
		return errs, fmt.Errorf("config %s: %w", path, err)
	}
	return errs, nil
}

// lookupTOML returns the value at key in a decoded TOML document.
func lookupTOML(doc map[string]any, key toml.Key) (any, bool) {
	var v any = doc
	for _, p := range key {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// tomlTypeMismatch says why v cannot go into a field of type t, in the
// words of the environment overrides' errors; "" if it can.
func tomlTypeMismatch(t reflect.Type, v any) string {
	if t == reflect.TypeOf(Duration{}) {
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("want a duration such as \"30s\", got %s", tomlValue(v))
		}
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return err.Error()
		}
		return ""
	}
	ok := false
	want := ""
	switch t.Kind() {
	case reflect.String:
		_, ok = v.(string)
		want = "a string"
	case reflect.Int:
		_, ok = v.(int64)
		want = "an integer"
	case reflect.Float64:
		switch v.(type) {
		case float64, int64:
			ok = true
		}
		want = "a number"
	case reflect.Bool:
		_, ok = v.(bool)
		want = "true or false"
	default:
		return ""
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("want %s, got %s", want, tomlValue(v))
}

// tomlValue describes a decoded TOML value for an error message.
func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case int64, float64, bool:
		return fmt.Sprint(v)
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	default:
		return "a date or time"
	}
}

// relabel puts the source of each value in the errors of Validate and
// readSecretFiles ("config: KEY: why"): "config: KEY: why (set by NAME)"
// when the environment variable NAME set KEY, else "config FILE: KEY: why"
// when a file was read.
func relabel(errs []error, file string, environ []string) []error {
	set := make(map[string]bool)
	for _, kv := range environ {
		if k, _, ok := strings.Cut(kv, "="); ok {
			set[k] = true
		}
	}
	var out []error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		rest, ok := strings.CutPrefix(err.Error(), "config: ")
		key, why, ok2 := strings.Cut(rest, ": ")
		switch {
		case !ok || !ok2:
			out = append(out, err)
		case set[envName(key)]:
			out = append(out, labelled{fmt.Sprintf("config: %s: %s (set by %s)", key, why, envName(key)), err})
		case file != "":
			out = append(out, labelled{fmt.Sprintf("config %s: %s: %s", file, key, why), err})
		default:
			out = append(out, err)
		}
	}
	for _, e := range errs {
		walk(e)
	}
	return out
}

// labelled is an error with its message rewritten by relabel.
type labelled struct {
	msg string
	err error
}

func (l labelled) Error() string { return l.msg }
func (l labelled) Unwrap() error { return l.err }

// envPrefix starts every environment override.
const envPrefix = "NEWSDIGEST_"

// EnvNames lists every environment override with its TOML key, in the
// order of the Config struct.
func EnvNames() [][2]string {
	var out [][2]string
	walkConfig(reflect.ValueOf(&Config{}).Elem(), "", func(key string, _ reflect.Value) error {
		out = append(out, [2]string{key, envName(key)})
		return nil
	})
	return out
}

func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func applyEnv(cfg *Config, environ []string) error {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, envPrefix) {
			env[k] = v
		}
	}
	known := make(map[string]bool)
	var errs []error
	err := walkConfig(reflect.ValueOf(cfg).Elem(), "", func(key string, f reflect.Value) error {
		name := envName(key)
		known[name] = true
		v, ok := env[name]
		if !ok {
			return nil
		}
		if err := setField(f, v); err != nil {
			errs = append(errs, fmt.Errorf("config: env %s (%s): %w", name, key, err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	var unknown []string
	for k := range env {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	for _, k := range sortStrings(unknown) {
		errs = append(errs, fmt.Errorf("config: unknown environment variable %s", k))
	}
	return errors.Join(errs...)
}

// walkConfig calls fn for every leaf field with its dotted TOML key.
func walkConfig(v reflect.Value, prefix string, fn func(key string, f reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		key := sf.Tag.Get("toml")
		if key == "" {
			continue
		}
		if prefix != "" {
			key = prefix + "." + key
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(Duration{}) {
			if err := walkConfig(f, key, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(key, f); err != nil {
			return err
		}
	}
	return nil
}

func setField(f reflect.Value, s string) error {
	if f.Type() == reflect.TypeOf(Duration{}) {
		return f.Addr().Interface().(*Duration).UnmarshalText([]byte(s))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		f.SetInt(int64(n))
	case reflect.Float64:
		n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		f.SetFloat(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		f.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// Validate checks every value and names the key of each bad one (the
// errors are joined, one per line).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if c.DB == "" {
		errs = append(errs, bad("db", "must not be empty"))
	}
	if c.Secret != "" && len(c.Secret) < 32 {
		errs = append(errs, bad("secret", "must be at least 32 characters (use e.g. `openssl rand -hex 32`)"))
	}
	if c.SMTP.Host == "" {
		errs = append(errs, bad("smtp.host", "must not be empty"))
	}
	if c.SMTP.Port < 1 || c.SMTP.Port > 65535 {
		errs = append(errs, bad("smtp.port", "%d is not a port (1–65535)", c.SMTP.Port))
	}
	if c.SMTP.TLS != "none" && c.SMTP.TLS != "starttls" && c.SMTP.TLS != "tls" {
		errs = append(errs, bad("smtp.tls", "%q is not one of none, starttls, tls", c.SMTP.TLS))
	}
	if c.SMTP.Workers < 1 || c.SMTP.Workers > 256 {
		errs = append(errs, bad("smtp.workers", "%d is not between 1 and 256", c.SMTP.Workers))
	}
	if c.SMTP.Rate < 0 {
		errs = append(errs, bad("smtp.rate", "must not be negative (0 = no limit)"))
	}
	if c.SMTP.Timeout.Duration <= 0 {
		errs = append(errs, bad("smtp.timeout", "must be positive"))
	}
	if (c.SMTP.Username == "") != (c.SMTP.Password == "") {
		errs = append(errs, bad("smtp.username", "username and password go together"))
	}
	if c.SMTP.Burst < 0 {
		errs = append(errs, bad("smtp.burst", "must not be negative"))
	}
	if c.SMTP.Retries < 0 || c.SMTP.Retries > 20 {
		errs = append(errs, bad("smtp.max_retries", "%d is not between 0 and 20", c.SMTP.Retries))
	}
	if c.SMTP.PauseErrors < 0 || c.SMTP.PauseErrors > 1 {
		errs = append(errs, bad("smtp.pause_errors", "%g is not a share between 0 and 1", c.SMTP.PauseErrors))
	}
	if c.SMTP.DomainConcurrency < 0 {
		errs = append(errs, bad("smtp.domain_concurrency", "must not be negative"))
	}
	if c.Log.Level != "debug" && c.Log.Level != "info" && c.Log.Level != "warn" && c.Log.Level != "error" {
		errs = append(errs, bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, bad("log.format", "%q is not one of text, json", c.Log.Format))
	}
	if (c.DKIM.Domain == "") != (c.DKIM.Selector == "") || (c.DKIM.Domain == "") != (c.DKIM.KeyFile == "") {
		errs = append(errs, bad("dkim", "domain, selector and key_file go together"))
	}
	if err := c.validateServe(); err != nil {
		errs = append(errs, err)
	}
	if c.Site.AccentColor != "" && !hexColor.MatchString(c.Site.AccentColor) {
		errs = append(errs, bad("site.accent_color", "%q is not a colour like #0b5cad", c.Site.AccentColor))
	}
	if c.Site.LinkColor != "" && !hexColor.MatchString(c.Site.LinkColor) {
		errs = append(errs, bad("site.link_color", "%q is not a colour like #0b5cad", c.Site.LinkColor))
	}
	if err := checkURL(c.HTTP.BaseURL); err != nil {
		errs = append(errs, bad("http.base_url", "%v", err))
	}
	if c.Site.URL != "" {
		if err := checkURL(c.Site.URL); err != nil {
			errs = append(errs, bad("site.url", "%v", err))
		}
	}
	if c.Site.LogoURL != "" && !strings.HasPrefix(c.Site.LogoURL, "https://") {
		errs = append(errs, bad("site.logo_url", "must be an absolute https URL"))
	}
	for _, kv := range []struct{ key, v string }{
		{"site.name", c.Site.Name}, {"site.postal_address", c.Site.PostalAddress}, {"mail.from", c.Mail.From},
	} {
		if strings.ContainsAny(kv.v, "\r\n") {
			errs = append(errs, bad(kv.key, "must not contain line breaks"))
		}
	}
	errs = append(errs, c.validateOps()...)
	errs = append(errs, c.validateFeeds()...)
	errs = append(errs, c.validateSchedule()...)
	return errors.Join(errs...)
}

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", s)
	}
	return nil
}
