package boltstore

import (
	"path/filepath"
	"testing"
	"time"
)

func TestAllowSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nd.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {time.Hour, false}, {-time.Hour, false}} {
		got, err := st.Allow("k", at.Add(tc.after), 24*time.Hour)
		if err != nil || got != tc.want {
			t.Fatalf("Allow at +%s: %v, %v; want %v", tc.after, got, err, tc.want)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ok, _ := st.Allow("k", at.Add(23*time.Hour), 24*time.Hour); ok {
		t.Error("the record did not survive a reopen")
	}
	if ok, _ := st.Allow("other", at, 24*time.Hour); !ok {
		t.Error("another key was throttled")
	}
	if ok, _ := st.Allow("k", at.Add(24*time.Hour), 24*time.Hour); !ok {
		t.Error("not allowed after the interval")
	}
	if err := st.Forget("k"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Allow("k", at.Add(24*time.Hour+time.Minute), 24*time.Hour); !ok {
		t.Error("not allowed after Forget")
	}
	if err := st.Check(); err != nil {
		t.Error(err)
	}
}
