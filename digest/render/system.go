package render

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
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

// SystemMail is a rendered system email.
type SystemMail struct {
	Subject    string
	HTML, Text []byte
}

// System renders the emails newsdigest sends on its own behalf, such as
// the double opt-in confirmation. It is safe for concurrent use.
type System struct {
	confirmHTML    *htmltemplate.Template
	confirmText    *texttemplate.Template
	confirmSubject *texttemplate.Template
}

// NewSystem parses the system email templates embedded in templates.FS
// ("email/confirm.*"), each replaced by a file of the same name in
// overrideDir when there is one.
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
	s := &System{}
	src, where, err := load(FileConfirmHTML)
	if err != nil {
		return nil, err
	}
	if s.confirmHTML, err = htmltemplate.New(FileConfirmHTML).Funcs(systemFuncs()).Parse(src); err != nil {
		return nil, fmt.Errorf("render: parse %s: %w", where, err)
	}
	if src, where, err = load(FileConfirmText); err != nil {
		return nil, err
	}
	if s.confirmText, err = texttemplate.New(FileConfirmText).Funcs(systemFuncs()).Parse(src); err != nil {
		return nil, fmt.Errorf("render: parse %s: %w", where, err)
	}
	if src, where, err = load(FileConfirmSubject); err != nil {
		return nil, err
	}
	if s.confirmSubject, err = texttemplate.New(FileConfirmSubject).Funcs(systemFuncs()).Parse(src); err != nil {
		return nil, fmt.Errorf("render: parse %s: %w", where, err)
	}
	return s, nil
}

// Confirmation renders the double opt-in email.
func (s *System) Confirmation(c Confirmation, now time.Time) (SystemMail, error) {
	if !isHTTPURL(c.ConfirmURL) {
		return SystemMail{}, fmt.Errorf("render: confirm URL %q: want an absolute http(s) URL", c.ConfirmURL)
	}
	b := c.Brand
	if b.AccentColor == "" || !accentRe.MatchString(b.AccentColor) {
		b.AccentColor = DefaultAccentColor
	}
	if b.Lang == "" || !langRe.MatchString(b.Lang) {
		b.Lang = DefaultLang
	}
	b.SiteName = oneLine(b.SiteName)
	var titles []string
	for _, t := range c.ListTitles {
		if t = oneLine(t); t != "" {
			titles = append(titles, t)
		}
	}
	if b.SiteName == "" && len(titles) > 0 {
		b.SiteName = titles[0]
	}
	d := ConfirmationData{
		Brand: b, Lists: joinAnd(titles), ConfirmURL: c.ConfirmURL,
		ExpiresText: humanDuration(c.Expires.Sub(now)), AccentColor: b.AccentColor,
	}
	var sb strings.Builder
	if err := s.confirmSubject.Execute(&sb, d); err != nil {
		return SystemMail{}, fmt.Errorf("render: execute %s: %w", FileConfirmSubject, err)
	}
	var hb, tb bytes.Buffer
	if err := s.confirmHTML.Execute(&hb, d); err != nil {
		return SystemMail{}, fmt.Errorf("render: execute %s: %w", FileConfirmHTML, err)
	}
	if err := s.confirmText.Execute(&tb, d); err != nil {
		return SystemMail{}, fmt.Errorf("render: execute %s: %w", FileConfirmText, err)
	}
	m := SystemMail{Subject: oneLine(sb.String()), HTML: hb.Bytes(), Text: []byte(tidyText(tb.String()))}
	if m.Subject == "" {
		return SystemMail{}, errors.New("render: the confirmation subject is empty")
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
