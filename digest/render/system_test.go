package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfirmation(t *testing.T) {
	s, err := NewSystem("")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	m, err := s.Confirmation(Confirmation{
		Brand:      Brand{SiteName: "The\r\nGazette", PostalAddress: "1 Main Street\nExample City"},
		ListTitles: []string{"The Daily", "The Weekly", "Sports <b>"},
		ConfirmURL: "https://news.example/confirm/abc.def",
		Expires:    now.Add(7 * 24 * time.Hour),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Confirm your subscription to The Daily, The Weekly and Sports <b>" {
		t.Errorf("subject %q", m.Subject)
	}
	for _, part := range []string{string(m.HTML), string(m.Text)} {
		for _, want := range []string{"https://news.example/confirm/abc.def", "7 days", "Example City", "The Gazette"} {
			if !strings.Contains(part, want) {
				t.Errorf("part lacks %q:\n%s", want, part)
			}
		}
	}
	if strings.Contains(string(m.HTML), "Sports <b>") || !strings.Contains(string(m.HTML), "Sports &lt;b&gt;") {
		t.Error("HTML does not escape list titles")
	}
	if _, err := s.Confirmation(Confirmation{ConfirmURL: "javascript:alert(1)"}, now); err == nil {
		t.Error("a javascript: confirm URL was accepted")
	}
}

func TestConfirmationOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileConfirmSubject), []byte("Please confirm: {{.Lists}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewSystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Confirmation(Confirmation{ListTitles: []string{"Daily"}, ConfirmURL: "https://x.example/confirm/t"}, time.Now())
	if err != nil || m.Subject != "Please confirm: Daily" {
		t.Errorf("%q %v", m.Subject, err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileConfirmHTML), []byte("{{.Nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSystem(dir); err == nil || !strings.Contains(err.Error(), FileConfirmHTML) {
		t.Errorf("a broken override: %v", err)
	}
}

func TestWelcome(t *testing.T) {
	s, err := NewSystem("")
	if err != nil {
		t.Fatal(err)
	}
	w := Welcome{
		Brand:          Brand{SiteName: "The\r\nGazette", SiteURL: "https://news.example/", PostalAddress: "1 Main Street\nExample City", Footer: "Local news since 1902."},
		ListTitles:     []string{"The Daily", "Sports <b>\r\nBcc: x@example.org"},
		SendTime:       "07:00",
		TimeZone:       "Europe/Paris",
		ArchiveURL:     "https://news.example/archive",
		PreferencesURL: "https://news.example/preferences/p.tok",
		UnsubscribeURL: "https://news.example/unsubscribe/u.tok",
	}
	m, err := s.Welcome(w)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Welcome to The Daily and Sports <b> Bcc: x@example.org" {
		t.Errorf("subject %q", m.Subject)
	}
	html, text := string(m.HTML), string(m.Text)
	for _, part := range []string{html, text} {
		for _, want := range []string{
			"https://news.example/archive", "https://news.example/preferences/p.tok", "https://news.example/unsubscribe/u.tok",
			"https://news.example/", "one email a day", "at about 07:00 (Europe/Paris time)", "Example City", "The Gazette", "Local news since 1902.",
		} {
			if !strings.Contains(part, want) {
				t.Errorf("part lacks %q:\n%s", want, part)
			}
		}
	}
	if strings.Contains(html, "Sports <b>") || !strings.Contains(html, "Sports &lt;b&gt;") {
		t.Error("HTML does not escape list titles")
	}
	for _, want := range []string{`lang="en"`, "max-width:600px", "max-height:0;max-width:0;overflow:hidden", `role="presentation"`, ">Unsubscribe</a>", ">Manage preferences</a>"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}

	t.Run("WeeklyNoTimeNoArchive", func(t *testing.T) {
		w := w
		w.Weekly, w.SendTime, w.ArchiveURL = true, "7 o'clock", ""
		m, err := s.Welcome(w)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{string(m.HTML), string(m.Text)} {
			if !strings.Contains(strings.Join(strings.Fields(part), " "), "one email a week, with") || strings.Contains(part, "at about") || strings.Contains(part, "/archive") {
				t.Errorf("weekly, bad time, no archive:\n%s", part)
			}
		}
	})
	t.Run("BadURLs", func(t *testing.T) {
		for _, bad := range []func(*Welcome){
			func(w *Welcome) { w.UnsubscribeURL = "" },
			func(w *Welcome) { w.PreferencesURL = "javascript:alert(1)" },
			func(w *Welcome) { w.ArchiveURL = "/archive" },
			func(w *Welcome) { w.ListTitles = []string{" \r\n"} },
		} {
			w := w
			bad(&w)
			if _, err := s.Welcome(w); err == nil {
				t.Errorf("accepted %+v", w)
			}
		}
	})
}

func TestWelcomeOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileWelcomeSubject), []byte("Hello from {{.Lists}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewSystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Welcome(Welcome{ListTitles: []string{"Daily"}, PreferencesURL: "https://x.example/p", UnsubscribeURL: "https://x.example/u"})
	if err != nil || m.Subject != "Hello from Daily" || !strings.Contains(string(m.HTML), "https://x.example/u") {
		t.Errorf("%q %v", m.Subject, err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileWelcomeText), []byte("{{.Nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSystem(dir); err == nil || !strings.Contains(err.Error(), FileWelcomeText) {
		t.Errorf("a broken override: %v", err)
	}
}
