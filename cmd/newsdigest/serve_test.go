package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"newsdigest/digest/boltstore"
)

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// daemon runs "newsdigest serve" in-process with c's environment until the
// test ends, and waits until its admin API answers.
func startDaemon(t *testing.T, c *cli) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		m := &Main{Stdin: strings.NewReader(""), Stdout: &logs, Stderr: &logs, Environ: c.environ}
		done <- m.Run(ctx, []string{"serve"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d:\n%s", code, logs.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("serve did not stop:\n%s", logs.String())
		}
	})
	var admin string
	for _, kv := range c.environ {
		if v, ok := strings.CutPrefix(kv, "NEWSDIGEST_ADMIN_ADDR="); ok {
			admin = v
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://" + admin + "/api/ping")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusUnauthorized {
				return // up, and asking for the token
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon's admin API did not come up:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func daemonCLI(t *testing.T) *cli {
	c := newCLI(t, "")
	c.environ = append(c.environ,
		"NEWSDIGEST_ADMIN_TOKEN=parity-token-0123456789",
		"NEWSDIGEST_ADMIN_ADDR="+freeAddr(t),
		"NEWSDIGEST_HTTP_ADDR="+freeAddr(t),
		"NEWSDIGEST_SMTP_TLS=none",
		// Feeds are fetched by the script's commands only, so that their
		// output does not depend on when the poller runs.
		"NEWSDIGEST_FEEDS_POLL=false",
	)
	return c
}

var (
	tsRe  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	tmRe  = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d`)
	idRe  = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	dirRe = regexp.MustCompile(`/[^\s"]*/nd\.db`)
)

// normalize hides what differs between two databases by nature: times
// of creation, random subscriber IDs, the file's path.
func normalize(s string) string {
	s = tsRe.ReplaceAllString(s, "TIME")
	s = tmRe.ReplaceAllString(s, "TIME")
	s = idRe.ReplaceAllString(s, "ID")
	return dirRe.ReplaceAllString(s, "DB")
}

// TestAdminCommandsSameThroughDaemon runs every admin command once on a
// database file directly and once on another file held by a running
// daemon (so that the CLI must go through the admin API), and requires the
// same exit status and output from each.
func TestAdminCommandsSameThroughDaemon(t *testing.T) {
	wd, _ := os.Getwd()
	demo := filepath.Join(wd, "..", "..", "templates", "demo")
	people := "email,name,timezone,send_hour,topics,company\n" +
		"bob@example.org,Bob,Europe/Paris,7,harbour;weather,Acme\n" +
		"bad@@example.org,Bad,,,,\n" +
		"carol@example.org,Carol,,25,,\n" +
		"dave@example.org,\"Dave\r\nSmith\",,,,\n" +
		"erin@example.org,Erin,America/New_York,,,\n"
	update := "email,name\nbob@example.org,Robert\nfrank@example.org,Frank\n"
	script := func(dir string) [][]string {
		return [][]string{
			{"subscribers", "add", "x@example.org"}, // no list yet
			{"lists", "add", "daily", "--title", "The Daily", "--from", "Gazette <digest@gazette.example>", "--top", "3"},
			{"lists", "add", "daily", "--from", "x@gazette.example"},
			{"lists", "add", "Bad Name", "--from", "x@gazette.example"},
			{"lists", "add", "weekly", "--from", "Gazette <weekly@gazette.example>", "--json"},
			{"lists", "set", "weekly", "--recent", "7", "--window", "168h"},
			{"lists", "set", "nope", "--top", "1"},
			{"lists", "show", "daily"},
			{"lists", "show", "weekly", "--json"},
			{"lists", "show", "nope"},
			{"subscribers", "add", "Ann@Example.org", "--name", "Ann", "--list", "daily", "--timezone", "Europe/Paris", "--send-hour", "7"},
			{"subscribers", "add", "ann@example.org", "--list", "daily"},
			{"subscribers", "add", "not-an-address", "--list", "daily"},
			{"subscribers", "add", "gil@example.org", "--list", "nope"},
			{"subscribers", "add", "hal@example.org", "--list", "daily", "--list", "weekly", "--pending", "--json"},
			{"subscribers", "import", "--list", "daily", filepath.Join(dir, "people.csv")},
			{"subscribers", "import", "--list", "weekly", "--update", filepath.Join(dir, "update.csv"), "--json"},
			{"subscribers", "list"},
			{"subscribers", "list", "--list", "weekly", "--json"},
			{"subscribers", "list", "--status", "pending"},
			{"subscribers", "show", "bob@example.org"},
			{"subscribers", "show", "BOB@example.org", "--json"},
			{"subscribers", "show", "nobody@example.org"},
			{"subscribers", "unsubscribe", "bob@example.org", "--list", "daily"},
			{"subscribers", "resubscribe", "erin@example.org", "--list", "daily"},
			{"subscribers", "unsubscribe", "nobody@example.org", "--list", "daily"},
			{"subscribers", "export", "--list", "daily"},
			{"subscribers", "export", "--format", "json"},
			{"subscribers", "remove", "erin@example.org"},
			{"subscribers", "remove", "erin@example.org"},
			{"lists", "list"},
			{"lists", "list", "--json"},
			{"feeds", "list"},
			{"feeds", "add", filepath.Join(demo, "feed.xml"), "--no-fetch"},
			{"feeds", "add", filepath.Join(demo, "feed.xml")},
			{"feeds", "fetch"},
			{"feeds", "fetch", "--json"},
			{"feeds", "fetch", "nope"},
			{"feeds", "list", "--json"},
			{"articles", "import", filepath.Join(demo, "articles.json")},
			{"articles", "list", "--limit", "5"},
			{"articles", "pin", "zzzz"},
			{"feeds", "remove", filepath.Join(demo, "feed.xml")},
			{"feeds", "remove", filepath.Join(demo, "feed.xml")},
			{"lists", "remove", "weekly"}, // no terminal to ask on: refused
			{"lists", "remove", "weekly", "--yes"},
			{"lists", "remove", "weekly", "--yes"},
			{"subscribers", "show", "hal@example.org", "--json"},
		}
	}
	// Article IDs are known only after the import; edit the first ones.
	edits := func(c *cli) [][]string {
		var ids []string
		for _, line := range strings.Split(c.ok("articles", "list", "--limit", "3"), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 0 {
				ids = append(ids, f[0])
			}
		}
		if len(ids) < 3 {
			t.Fatalf("articles list: %v", ids)
		}
		return [][]string{
			{"articles", "pin", ids[0][:6]},
			{"articles", "boost", ids[1], "3"},
			{"articles", "boost", ids[1], "-1"},
			{"articles", "exclude", ids[2], "--json"},
			{"articles", "include", ids[2]},
			{"articles", "unpin", ids[0]},
			{"articles", "list", "--json", "--limit", "3"},
		}
	}

	type result struct {
		code     int
		out, err string
	}
	run := func(c *cli, through bool) []result {
		c.file("people.csv", people)
		c.file("update.csv", update)
		var out []result
		norm := func(s string) string { return normalize(strings.ReplaceAll(s, c.dir, "DIR")) }
		cmds := script(c.dir)
		for i, args := range cmds {
			code, so, se := c.run(args...)
			out = append(out, result{code, norm(so), norm(se)})
			if args[0] == "articles" && args[1] == "import" {
				for _, e := range edits(c) {
					code, so, se := c.run(e...)
					out = append(out, result{code, norm(so), norm(se)})
				}
			}
			if through && i == 2 {
				// The daemon holds the file: only the API can have answered.
				if _, err := boltstore.Open(filepath.Join(c.dir, "nd.db"), boltstore.Options{Timeout: -1}); !errors.Is(err, boltstore.ErrLocked) {
					t.Fatalf("the daemon does not hold the database: %v", err)
				}
			}
		}
		return out
	}

	direct := run(newCLI(t, ""), false)
	dc := daemonCLI(t)
	startDaemon(t, dc)
	api := run(dc, true)

	if len(direct) != len(api) {
		t.Fatalf("%d results directly, %d through the API", len(direct), len(api))
	}
	for i := range direct {
		if direct[i] != api[i] {
			t.Errorf("command %d differs:\ndirect: exit %d\n%s%s\nthrough the API: exit %d\n%s%s",
				i, direct[i].code, direct[i].out, direct[i].err, api[i].code, api[i].out, api[i].err)
		}
	}
	// The script exercised successes and failures alike.
	var ok, failed int
	for _, r := range direct {
		if r.code == 0 {
			ok++
		} else {
			failed++
		}
	}
	t.Logf("%d commands: %d succeeded, %d failed, the same directly and through the API", len(direct), ok, failed)
	if ok < 30 || failed < 10 {
		t.Errorf("%d commands succeeded and %d failed: the script lost its coverage", ok, failed)
	}
}

func TestServeRefusesWithoutToken(t *testing.T) {
	c := newCLI(t, "")
	code, _, errs := c.run("serve")
	if code != 1 || !strings.Contains(errs, "NEWSDIGEST_ADMIN_TOKEN") {
		t.Errorf("exit %d: %s", code, errs)
	}
	c.environ = append(c.environ, "NEWSDIGEST_ADMIN_TOKEN=short")
	if code, _, errs := c.run("serve"); code != 1 || !strings.Contains(errs, "admin.token") {
		t.Errorf("short token: exit %d: %s", code, errs)
	}
}

func TestAdminCommandWithDaemonWrongToken(t *testing.T) {
	c := daemonCLI(t)
	c.ok("lists", "add", "daily", "--from", "x@gazette.example")
	startDaemon(t, c)
	wrong := &cli{t: t, dir: c.dir, environ: append(append([]string(nil), c.environ...), "NEWSDIGEST_ADMIN_TOKEN=another-token-0123456789")}
	for i, kv := range wrong.environ {
		if strings.HasPrefix(kv, "NEWSDIGEST_ADMIN_TOKEN=parity") {
			wrong.environ = append(wrong.environ[:i], wrong.environ[i+1:]...)
			break
		}
	}
	code, _, errs := wrong.run("lists", "list")
	if code != 1 || !strings.Contains(errs, "in use by another process") || !strings.Contains(errs, "refused the token") {
		t.Errorf("wrong token: exit %d: %s", code, errs)
	}
	if out := c.ok("lists", "list"); !strings.Contains(out, "daily") {
		t.Errorf("right token: %s", out)
	}
}
