package boltstore

import (
	"errors"
	"testing"
	"time"
)

func TestSuppressions(t *testing.T) {
	s, _ := mustOpen(t)
	if err := s.Suppress("Bob@Example.org", "550 5.1.1 user unknown", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress("ann@example.org", "complaint", t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress("not an address", "x", t0); err == nil {
		t.Error("Suppress accepted an invalid address")
	}

	reason, ok, err := s.Suppressed("bob@EXAMPLE.org")
	if err != nil || !ok || reason != "550 5.1.1 user unknown" {
		t.Errorf("Suppressed(bob) = %q, %v, %v; want the reason, true, nil", reason, ok, err)
	}
	if _, ok, err := s.Suppressed("carol@example.org"); err != nil || ok {
		t.Errorf("Suppressed(carol) = %v, %v; want false, nil", ok, err)
	}

	all, err := s.Suppressions()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Email != "ann@example.org" || all[1].Email != "bob@example.org" {
		t.Fatalf("Suppressions() = %+v, want ann then bob", all)
	}
	if !all[0].At.Equal(t0.Add(-time.Hour)) || !all[1].At.Equal(t0) {
		t.Errorf("At = %v, %v; want %v (given), %v (clock)", all[0].At, all[1].At, t0.Add(-time.Hour), t0)
	}

	among, err := s.SuppressedAmong([]string{"ANN@example.org", "carol@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := among["ann@example.org"]; !ok || len(among) != 1 {
		t.Errorf("SuppressedAmong = %v, want only ann", among)
	}

	if err := s.Unsuppress("bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Suppressed("bob@example.org"); ok {
		t.Error("bob still suppressed after Unsuppress")
	}
	if err := s.Unsuppress("bob@example.org"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Unsuppress = %v, want ErrNotFound", err)
	}
}
