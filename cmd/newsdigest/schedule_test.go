package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"newsdigest/digest/capture"
)

func TestCLIListScheduleIsValidated(t *testing.T) {
	c := newCLI(t, "")
	for _, bad := range []string{"every day", "99 99 * * *", "CRON_TZ=Bad/Zone 0 7 * * *"} {
		code, _, errs := c.run("lists", "add", "x", "--from", "Gazette <digest@gazette.example>", "--schedule", bad)
		if code == 0 || !strings.Contains(errs, "schedule") {
			t.Errorf("--schedule %q: exit %d, %q; want refused", bad, code, errs)
		}
	}
	if code, _, _ := c.run("lists", "show", "x"); code == 0 {
		t.Error("a list with a bad schedule was saved")
	}
	c.ok("lists", "add", "x", "--from", "Gazette <digest@gazette.example>", "--schedule", "CRON_TZ=Europe/Paris 0 7 * * *")
	c.ok("lists", "set", "x", "--schedule", "local", "--max-lateness", "90m", "--intro", "Good morning.", "--subject", "Storm special")
	if code, _, errs := c.run("lists", "set", "x", "--schedule", "61 7 * * *"); code == 0 || !strings.Contains(errs, "schedule") {
		t.Errorf("set to a bad schedule: exit %d %q", code, errs)
	}
	var l struct {
		Schedule    string        `json:"schedule"`
		MaxLateness time.Duration `json:"max_lateness"`
		NextIntro   string        `json:"next_intro"`
		NextSubject string        `json:"next_subject"`
	}
	if err := json.Unmarshal([]byte(c.ok("lists", "show", "x", "--json")), &l); err != nil {
		t.Fatal(err)
	}
	if l.Schedule != "local" || l.MaxLateness != 90*time.Minute || l.NextIntro != "Good morning." || l.NextSubject != "Storm special" {
		t.Errorf("list after set: %+v", l)
	}
}

// TestCLISendTwiceRefusedAndEditorsSubject: an editor's subject and intro
// go into the next edition only; a second send in the period is refused
// with a message; --force-new sends a new edition.
func TestCLISendTwiceRefusedAndEditorsSubject(t *testing.T) {
	srv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newCLI(t, srv.Addr())
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>", "--subject", "Storm special", "--intro", "The storm, hour by hour.")
	c.ok("subscribers", "add", "ann@example.org")
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))

	if out := c.ok("preview", "--as", "ann@example.org"); !strings.Contains(out, "copy of ann@example.org") || !strings.Contains(out, "subject: Storm special") {
		t.Errorf("preview --as:\n%s", out)
	}
	c.ok("send", "--yes")
	if srv.Count() != 1 || !strings.Contains(string(srv.Messages()[0].Data), "Subject: Storm special") ||
		!strings.Contains(string(srv.Messages()[0].Data), "The storm, hour by hour.") {
		t.Fatalf("first send: %d messages\n%s", srv.Count(), srv.Messages()[0].Data)
	}
	code, _, errs := c.run("send", "--yes")
	if code != 1 || !strings.Contains(errs, "already sent") || !strings.Contains(errs, "--force-new") {
		t.Errorf("second send: exit %d %q", code, errs)
	}
	// A new story, and a forced new edition: the subject was for one
	// edition only.
	later := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC1123Z)
	feed2 := strings.NewReplacer("<guid>g", "<guid>n", "gazette.example/1", "gazette.example/n1", "gazette.example/2", "gazette.example/n2").Replace(sampleFeed)
	c.ok("feeds", "add", c.file("feed2.xml", strings.Replace(strings.Replace(feed2, "%s", later, 1), "%s", later, 1)))
	out := c.ok("send", "--yes", "--force-new")
	if !strings.Contains(out, "-2: 1 sent") {
		t.Errorf("forced send: %s", out)
	}
	if srv.Count() != 2 || strings.Contains(string(srv.Messages()[1].Data), "Storm special") {
		t.Errorf("forced edition: %d messages; its subject must be the template's", srv.Count())
	}
}

// TestServeSendsThroughTheDaemon: with serve holding the database, 'send'
// asks the daemon's admin API, which refuses a second send too.
func TestServeSendsThroughTheDaemon(t *testing.T) {
	srv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newCLI(t, srv.Addr())
	c.environ = append(c.environ,
		"NEWSDIGEST_ADMIN_TOKEN=sched-admin-token-0123456789",
		"NEWSDIGEST_ADMIN_ADDR="+freeAddr(t),
		"NEWSDIGEST_HTTP_ADDR="+freeAddr(t),
		"NEWSDIGEST_FEEDS_POLL=false",
	)
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	c.ok("subscribers", "add", "ann@example.org")
	c.ok("subscribers", "add", "bob@example.org")
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))
	stop := serveUntil(t, c)
	// The daemon sends (not a schedule); the CLI follows its send to the
	// end and prints its result, as a send of its own does.
	if out := c.ok("send", "--yes"); !strings.Contains(out, ": 2 sent, 0 failed, 0 suppressed") {
		t.Errorf("send through the daemon: %s", out)
	}
	if srv.Count() != 2 {
		t.Errorf("%d messages once send returned, want 2", srv.Count())
	}
	if code, _, errs := c.run("send", "--yes"); code != 1 || !strings.Contains(errs, "refused") {
		t.Errorf("second send through the daemon: exit %d %q", code, errs)
	}
	logs := stop()
	if !strings.Contains(logs, "edition triggered") || !strings.Contains(logs, "triggered edition sent") {
		t.Errorf("the daemon's log:\n%s", logs)
	}
}
