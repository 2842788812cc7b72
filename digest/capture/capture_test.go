package capture

import (
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

func start(t *testing.T, dir string) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

const body = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n.leading dot\r\n"

func TestSaveAndKeep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inbox")
	s := start(t, dir)
	for _, to := range []string{"b@example.org", "c@example.org"} {
		if err := smtp.SendMail(s.Addr(), nil, "a@example.org", []string{to}, []byte(body)); err != nil {
			t.Fatalf("SendMail: %v", err)
		}
	}
	if got, want := s.Count(), 2; got != want {
		t.Fatalf("Count() = %d, want %d", got, want)
	}
	msgs := s.Messages()
	for i, want := range []string{"b@example.org", "c@example.org"} {
		m := msgs[i]
		if m.From != "a@example.org" || len(m.To) != 1 || m.To[0] != want {
			t.Errorf("message %d: from %q to %v, want a@example.org to %s", i, m.From, m.To, want)
		}
		if got := string(m.Data); got != body {
			t.Errorf("message %d data = %q, want %q", i, got, body)
		}
		wantPath := filepath.Join(dir, []string{"000001.eml", "000002.eml"}[i])
		if m.Path != wantPath {
			t.Errorf("message %d path = %q, want %q", i, m.Path, wantPath)
		}
		if b, err := os.ReadFile(wantPath); err != nil || string(b) != body {
			t.Errorf("file %s = %q, %v", wantPath, b, err)
		}
	}
}

func TestMemoryOnly(t *testing.T) {
	s := start(t, "")
	if err := smtp.SendMail(s.Addr(), nil, "a@example.org", []string{"b@example.org", "c@example.org"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	m := s.Messages()
	if len(m) != 1 || m[0].Path != "" || len(m[0].To) != 2 {
		t.Errorf("Messages() = %+v, want one in memory with two recipients", m)
	}
}

func TestReplyHook(t *testing.T) {
	s := start(t, "")
	s.SetReply(func(from, to string) error {
		if to == "gone@example.org" {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		}
		return nil
	})
	err := smtp.SendMail(s.Addr(), nil, "a@example.org", []string{"gone@example.org"}, []byte(body))
	if err == nil || !strings.Contains(err.Error(), "550") || !strings.Contains(err.Error(), "5.1.1") {
		t.Errorf("refused recipient: err = %v, want 550 5.1.1", err)
	}
	if err := smtp.SendMail(s.Addr(), nil, "a@example.org", []string{"ok@example.org"}, []byte(body)); err != nil {
		t.Errorf("accepted recipient: %v", err)
	}
	if got := s.Count(); got != 1 {
		t.Errorf("Count() = %d, want 1", got)
	}
	s.SetReply(nil)
	if err := smtp.SendMail(s.Addr(), nil, "a@example.org", []string{"gone@example.org"}, []byte(body)); err != nil {
		t.Errorf("after removing the hook: %v", err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:25"} {
		if s, err := Start(addr, ""); err == nil {
			s.Close()
			t.Errorf("Start(%q): want an error", addr)
		}
	}
}

func TestClose(t *testing.T) {
	s, err := Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := smtp.SendMail(addr, nil, "a@example.org", []string{"b@example.org"}, []byte(body)); err == nil {
		t.Errorf("send after Close: want an error")
	}
}
