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
