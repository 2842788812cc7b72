package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"newsdigest/digest/boltstore"
	"newsdigest/digest/schedule"
)

// TestListsShowSameThroughDaemon: 'lists show' prints the scheduler's
// last slot and run, and its JSON the values in effect (defaults where
// the list sets none), the confirmed count and the last slot and run,
// the same directly and through the daemon; 'editions list --list' of an
// unknown list fails alike.
func TestListsShowSameThroughDaemon(t *testing.T) {
	slot := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	prepare := func(c *cli) {
		c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>", "--schedule", "0 7 * * *")
		c.ok("subscribers", "add", "ann@example.org")
		st, err := boltstore.Open(filepath.Join(c.dir, "nd.db"), boltstore.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.PutListSchedule("daily", schedule.ListState{LastSlot: slot, LastEdition: "daily-20260302-0700", LastResult: "sent 1", Updated: slot}); err != nil {
			t.Fatal(err)
		}
	}
	cmds := [][]string{
		{"lists", "show", "daily"},
		{"lists", "show", "daily", "--json"},
		{"editions", "list", "--list", "nosuch"},
		{"editions", "list", "--list", "nosuch", "--json"},
		{"editions", "list", "--list", "daily"},
	}
	type result struct {
		code     int
		out, err string
	}
	var raw []string // the direct outputs, times and all
	run := func(c *cli) []result {
		var out []result
		for _, args := range cmds {
			code, so, se := c.run(args...)
			out = append(out, result{code, normalize(so), normalize(se)})
			raw = append(raw, so)
		}
		return out
	}
	dc := newCLI(t, "")
	prepare(dc)
	direct := run(dc)
	ac := daemonCLI(t)
	ac.environ = append(ac.environ, "NEWSDIGEST_SCHEDULE_RUN=false") // the state stays as set
	prepare(ac)
	startDaemon(t, ac)
	api := run(ac)
	for i := range direct {
		if direct[i] != api[i] {
			t.Errorf("%v differs:\ndirect: exit %d\n%s%s\nthrough the API: exit %d\n%s%s",
				cmds[i], direct[i].code, direct[i].out, direct[i].err, api[i].code, api[i].out, api[i].err)
		}
	}
	if show := direct[0].out; !strings.Contains(show, "last slot:") || !strings.Contains(show, "sent 1") || !strings.Contains(show, "top stories:           5") {
		t.Errorf("lists show:\n%s", show)
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(raw[1]), &js); err != nil {
		t.Fatalf("lists show --json: %v\n%s", err, raw[1])
	}
	want := map[string]any{"top_count": 5.0, "recent_count": 5.0, "window": float64(48 * time.Hour), "min_stories": 1.0,
		"max_lateness": float64(3 * time.Hour), "confirmed": 1.0, "last_run": "sent 1", "last_edition": "daily-20260302-0700", "last_slot": "2026-03-02T07:00:00Z"}
	for k, v := range want {
		if js[k] != v {
			t.Errorf("lists show --json: %s = %v, want %v", k, js[k], v)
		}
	}
	for _, i := range []int{2, 3} {
		if r := direct[i]; r.code != 1 || !strings.Contains(r.err, `list "nosuch" not found`) {
			t.Errorf("%v: exit %d: %s%s", cmds[i], r.code, r.out, r.err)
		}
	}
	if direct[4].code != 0 {
		t.Errorf("editions list of a list without editions: exit %d: %s", direct[4].code, direct[4].err)
	}
}
