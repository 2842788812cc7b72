package render

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	texttemplate "text/template"
	"time"

	"newsdigest/templates"
)

// Template files of the system emails, looked up like the digest's: in
// templates.FS under "email/" and in the override directory.
const (
	FileConfirmHTML    = "confirm.html.tmpl"
	FileConfirmText    = "confirm.txt.tmpl"
	FileConfirmSubject = "confirm.subject.txt.tmpl"
	FileWelcomeHTML    = "welcome.html.tmpl"
	FileWelcomeText    = "welcome.txt.tmpl"
	FileWelcomeSubject = "welcome.subject.txt.tmpl"
)

// Confirmation is what the double opt-in email says. It never carries
// anything the person typed into the form (no name, no free text): only
// the site's own words, the titles of the lists asked for and the link.
type Confirmation struct {
	Brand      Brand
	ListTitles []string  // titles of the lists to confirm
	ConfirmURL string    // absolute http(s) URL carrying the confirm token
	Expires    time.Time // when the link stops working
}

// ConfirmationData is what the confirmation templates see.
type ConfirmationData struct {
	Brand       Brand
	Lists       string // the titles joined: "The Daily and The Weekly"
	ConfirmURL  string
	ExpiresText string // e.g. "7 days"
	AccentColor string
}

// Welcome is what the email sent once a subscription is confirmed says.
// Like the confirmation, it carries only the site's own words, list
// titles and links: nothing the person typed.
type Welcome struct {
	Brand          Brand
	ListTitles     []string // titles of the lists just joined
	Weekly         bool     // the subscriber gets one edition a week instead of one a day
	SendTime       string   // "07:00" when the time of day is known; optional
	TimeZone       string   // IANA name SendTime is in, e.g. "Europe/Paris"; optional
	ArchiveURL     string   // absolute http(s) URL of past editions; optional
	PreferencesURL string   // absolute http(s) URL carrying a preferences token
	UnsubscribeURL string   // absolute http(s) URL carrying an unsubscribe token
}

// WelcomeData is what the welcome templates see.
type WelcomeData struct {
	Brand          Brand
	Lists          string // the titles joined: "The Daily and The Weekly"
	Weekly         bool
	SendTime       string
	TimeZone       string
	ArchiveURL     string
	PreferencesURL string
	UnsubscribeURL string
	AccentColor    string
}

// SystemMail is a rendered system email.
type SystemMail struct {
	Subject    string
	HTML, Text []byte
}

// System renders the emails newsdigest sends on its own behalf: the
// double opt-in confirmation and the welcome email. It is safe for
// concurrent use.
type System struct {
	confirmHTML    *htmltemplate.Template
	confirmText    *texttemplate.Template
	confirmSubject *texttemplate.Template
	welcomeHTML    *htmltemplate.Template
	welcomeText    *texttemplate.Template
	welcomeSubject *texttemplate.Template
}

// NewSystem parses the system email templates embedded in templates.FS
// ("email/confirm.*" and "email/welcome.*"), each replaced by a file of
// the same name in overrideDir when there is one. Errors name the file.
func NewSystem(overrideDir string) (*System, error) {
	load := func(name string) (src, where string, err error) {
		if overrideDir != "" {
			p := filepath.Join(overrideDir, name)
			b, err := os.ReadFile(p)
			if err == nil {
				return string(b), p, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", p, fmt.Errorf("render: %w", err)
			}
		}
		b, err := templates.FS.ReadFile("email/" + name)
		if err != nil {
			return "", "email/" + name, fmt.Errorf("render: embedded template email/%s: %w", name, err)
		}
		return string(b), "templates/email/" + name, nil
	}
	parseHTML := func(dst **htmltemplate.Template, name string) error {
		src, where, err := load(name)
		if err != nil {
			return err
		}
		if *dst, err = htmltemplate.New(name).Funcs(systemFuncs()).Parse(src); err != nil {
			return fmt.Errorf("render: parse %s: %w", where, err)
		}
		return nil
	}
	parseText := func(dst **texttemplate.Template, name string) error {
		src, where, err := load(name)
		if err != nil {
			return err
		}
		if *dst, err = texttemplate.New(name).Funcs(systemFuncs()).Parse(src); err != nil {
			return fmt.Errorf("render: parse %s: %w", where, err)
		}
		return nil
	}
	s := &System{}
	for _, err := range []error{
		parseHTML(&s.confirmHTML, FileConfirmHTML),
		parseText(&s.confirmText, FileConfirmText),
		parseText(&s.confirmSubject, FileConfirmSubject),
		parseHTML(&s.welcomeHTML, FileWelcomeHTML),
		parseText(&s.welcomeText, FileWelcomeText),
		parseText(&s.welcomeSubject, FileWelcomeSubject),
	} {
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Confirmation renders the double opt-in email.
func (s *System) Confirmation(c Confirmation, now time.Time) (SystemMail, error) {
	if !isHTTPURL(c.ConfirmURL) {
		return SystemMail{}, fmt.Errorf("render: confirm URL %q: want an absolute http(s) URL", c.ConfirmURL)
	}
	b, titles := systemBrand(c.Brand, c.ListTitles)
	d := ConfirmationData{
		Brand: b, Lists: joinAnd(titles), ConfirmURL: c.ConfirmURL,
		ExpiresText: humanDuration(c.Expires.Sub(now)), AccentColor: b.AccentColor,
	}
	return execSystem("confirmation", d, s.confirmSubject, s.confirmHTML, s.confirmText)
}

var sendTimeRe = regexp.MustCompile(`^(?:[01][0-9]|2[0-3]):[0-5][0-9]$`)

// Welcome renders the email sent once a subscription is confirmed: which
// lists, how often and when, the archive, and the preferences and
// unsubscribe links a subscriber must find in every list email.
func (s *System) Welcome(w Welcome) (SystemMail, error) {
	for _, u := range []struct{ name, url string }{
		{"unsubscribe", w.UnsubscribeURL}, {"preferences", w.PreferencesURL},
	} {
		if !isHTTPURL(u.url) {
			return SystemMail{}, fmt.Errorf("render: welcome %s URL %q: want an absolute http(s) URL", u.name, u.url)
		}
	}
	if w.ArchiveURL != "" && !isHTTPURL(w.ArchiveURL) {
		return SystemMail{}, fmt.Errorf("render: welcome archive URL %q: want an absolute http(s) URL", w.ArchiveURL)
	}
	b, titles := systemBrand(w.Brand, w.ListTitles)
	if len(titles) == 0 {
		return SystemMail{}, errors.New("render: welcome: no list title")
	}
	d := WelcomeData{
		Brand: b, Lists: joinAnd(titles), Weekly: w.Weekly,
		ArchiveURL: w.ArchiveURL, PreferencesURL: w.PreferencesURL, UnsubscribeURL: w.UnsubscribeURL,
		AccentColor: b.AccentColor,
	}
	if sendTimeRe.MatchString(w.SendTime) {
		d.SendTime, d.TimeZone = w.SendTime, oneLine(w.TimeZone)
	}
	return execSystem("welcome", d, s.welcomeSubject, s.welcomeHTML, s.welcomeText)
}

// systemBrand fills the brand's defaults and makes the site name and list
// titles one line each; with no site name, the first title stands in.
func systemBrand(b Brand, listTitles []string) (Brand, []string) {
	if b.AccentColor == "" || !accentRe.MatchString(b.AccentColor) {
		b.AccentColor = DefaultAccentColor
	}
	if b.LinkColor == "" || !accentRe.MatchString(b.LinkColor) {
		b.LinkColor = DefaultLinkColor
	}
	if b.Lang == "" || !langRe.MatchString(b.Lang) {
		b.Lang = DefaultLang
	}
	b.SiteName = oneLine(b.SiteName)
	var titles []string
	for _, t := range listTitles {
		if t = oneLine(t); t != "" {
			titles = append(titles, t)
		}
	}
	if b.SiteName == "" && len(titles) > 0 {
		b.SiteName = titles[0]
	}
	return b, titles
}

// execSystem runs a system email's three templates on d.
func execSystem(what string, d any, subject *texttemplate.Template, html *htmltemplate.Template, text *texttemplate.Template) (SystemMail, error) {
	var sb strings.Builder
	if err := subject.Execute(&sb, d); err != nil {
		return SystemMail{}, fmt.Errorf("render: execute %s: %w", subject.Name(), err)
	}
	var hb, tb bytes.Buffer
	if err := html.Execute(&hb, d); err != nil {
		return SystemMail{}, fmt.Errorf("render: execute %s: %w", html.Name(), err)
	}
	if err := text.Execute(&tb, d); err != nil {
		return SystemMail{}, fmt.Errorf("render: execute %s: %w", text.Name(), err)
	}
	m := SystemMail{Subject: oneLine(sb.String()), HTML: hb.Bytes(), Text: []byte(tidyText(tb.String()))}
	if m.Subject == "" {
		return SystemMail{}, fmt.Errorf("render: the %s subject is empty", what)
	}
	return m, nil
}

// systemFuncs is the digest templates' functions plus lines, which splits
// a multi-line value (the postal address) into its non-empty lines.
func systemFuncs() map[string]any {
	m := make(map[string]any, len(funcs)+1)
	for k, v := range funcs {
		m[k] = v
	}
	m["lines"] = func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = oneLine(l); l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	return m
}

// joinAnd joins ["a", "b", "c"] as "a, b and c".
func joinAnd(ss []string) string {
	switch len(ss) {
	case 0:
		return ""
	case 1:
		return ss[0]
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " and " + ss[len(ss)-1]
}

// humanDuration writes d in whole days or hours, e.g. "7 days".
func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Round(time.Hour).Hours())/24)
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Round(time.Hour).Hours()))
	case d > 0:
		return "an hour"
	}
	return ""
}
