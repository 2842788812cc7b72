package bounce

import (
	"context"
	"errors"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"newsdigest/digest/boltstore"
	"newsdigest/subscribers"
)

func sendSMTP(t *testing.T, addr, rcpt string, data []byte) error {
	t.Helper()
	return smtp.SendMail(addr, nil, "", []string{rcpt}, data)
}

func TestListener(t *testing.T) {
	st := openStore(t)
	p, _, _ := newProcessor(t, st)
	p.RequireToken = true
	keep := filepath.Join(t.TempDir(), "kept")
	l := &Listener{Processor: p, KeepDir: keep}
	if err := l.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	raw, _ := os.ReadFile("testdata/postfix-hard.eml")
	if err := sendSMTP(t, l.Addr(), "bounces+"+tokAnn+"@bounce.harbourgazette.example", raw); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Suppressed("ann@mail.example.net"); !ok {
		t.Error("hard bounce over SMTP did not suppress")
	}
	// Garbage is accepted, kept aside and counted, and the listener goes on.
	garbage, _ := os.ReadFile("testdata/garbage.eml")
	if err := sendSMTP(t, l.Addr(), "bounces@bounce.harbourgazette.example", garbage); err != nil {
		t.Fatal(err)
	}
	delayed, _ := os.ReadFile("testdata/postfix-delayed.eml")
	if err := sendSMTP(t, l.Addr(), "bounces+"+tokBob+"@bounce.harbourgazette.example", delayed); err != nil {
		t.Fatal(err)
	}
	if got, want := l.Kept(), int64(1); got != want {
		t.Errorf("Kept = %d, want %d", got, want)
	}
	if got, want := l.Received(), int64(3); got != want {
		t.Errorf("Received = %d, want %d", got, want)
	}
	files, _ := filepath.Glob(filepath.Join(keep, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("kept files = %v", files)
	}
	if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), "garbage") {
		t.Errorf("kept file holds %q", b)
	}
	if evs, _ := st.Events("bob@full.example.com"); len(evs) != 1 {
		t.Errorf("soft bounce events = %v", evs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// failingStore fails every write, like a full disk.
type failingStore struct{ *boltstore.Store }

func (failingStore) Suppress(string, string, time.Time) error { return errors.New("disk full") }
func (failingStore) RecordEvent(string, subscribers.Event) error {
	return errors.New("disk full")
}

func TestListenerStoreFailureAsksRetry(t *testing.T) {
	st := openStore(t)
	p, _, _ := newProcessor(t, failingStore{st})
	l := &Listener{Processor: p}
	if err := l.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw, _ := os.ReadFile("testdata/postfix-hard.eml")
	err := sendSMTP(t, l.Addr(), "bounces+"+tokAnn+"@bounce.harbourgazette.example", raw)
	if err == nil || !strings.Contains(err.Error(), "451") {
		t.Errorf("err = %v, want a 451 so that the sender retries", err)
	}
}
