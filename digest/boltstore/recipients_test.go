package boltstore

import (
	"bytes"
	"path/filepath"
	"testing"

	"newsdigest/subscribers"
)

func TestConfirmedEmails(t *testing.T) {
	s, clk := mustOpen(t)
	if err := s.PutList(subscribers.List{Name: "daily", From: "a@example.org"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		email string
		st    subscribers.Status
	}{{"c@example.org", subscribers.Confirmed}, {"a@example.org", subscribers.Confirmed}, {"b@example.org", subscribers.Pending}, {"d@example.org", subscribers.Confirmed}} {
		sub := subscribers.Subscriber{Email: e.email}
		sub.SetStatus("daily", e.st, clk.Now())
		if err := s.PutSubscriber(sub); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ConfirmedEmails("daily", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a@example.org", "c@example.org"}; !equalStrings(got, want) {
		t.Errorf("page 1: got %v, want %v", got, want)
	}
	got, err = s.ConfirmedEmails("daily", "c@example.org", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d@example.org"}; !equalStrings(got, want) {
		t.Errorf("page 2: got %v, want %v", got, want)
	}
}

func TestSecretIsCreatedOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "newsdigest.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Secret()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || bytes.Equal(a, make([]byte, 32)) {
		t.Fatalf("secret %x: want 32 random bytes", a)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	b, err := s2.Secret()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("secret changed across reopen")
	}
}
