package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"newsdigest/digest/adminapi"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/capture"
)

var (
	// What differs between two runs by the clock alone: scores (the
	// decay moves on), ages and durations, progress lines, SMTP ports.
	scoreRe    = regexp.MustCompile(`\b\d+\.\d{3}\b|"score": [0-9.e+-]+`)
	durRe      = regexp.MustCompile(`\b(\d+h)?(\d+m)?\d+(\.\d+)?(s|ms|µs|ns)\b|"(age|elapsed_ms)": \d+`)
	progressRe = regexp.MustCompile(`(?m)^sending \S+: \d+/\d+ sent.*\n`)
	portRe     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	tokenRe    = regexp.MustCompile(`[A-Za-z0-9_-]{24,}`)
	sourceRe   = regexp.MustCompile(`"source": "[0-9a-f]{8}"`) // a feed's random ID
	slotRe     = regexp.MustCompile(`\b\d{8}-\d{4}\b`)         // an edition's date, in its ID
)

// TestEditorCommandsSameThroughDaemon is TestAdminCommandsSameThroughDaemon
// for the editor's commands (editions, preview, check --list, send's
// checks): one database used directly, another held by a running daemon,
// the same script, the same exit status and output. The edition to
// resume was paused before the daemon started (its SMTP server was not
// up yet); the resume through the daemon is sent by the daemon.
func TestEditorCommandsSameThroughDaemon(t *testing.T) {
	published := time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC1123Z)
	feed := sampleFeedAt(published)

	type result struct {
		code     int
		out, err string
	}
	type run struct {
		results []result
		html    string   // preview --out's file
		dry     []string // the files of send --dry-run
		sent    int      // messages the SMTP server got
		args    [][]string
		dir     string
	}
	do := func(c *cli, through bool) run {
		// The SMTP server's address is taken now and served only after
		// the first send, which therefore pauses its edition.
		smtpAddr := freeAddr(t)
		host, port, _ := strings.Cut(smtpAddr, ":")
		c.environ = append(c.environ,
			"NEWSDIGEST_SMTP_HOST="+host, "NEWSDIGEST_SMTP_PORT="+port, "NEWSDIGEST_SMTP_TLS=none",
			"NEWSDIGEST_SMTP_MAX_RETRIES=1",
			"NEWSDIGEST_SECRET=editor-parity-secret-0123456789abcdef",
			"NEWSDIGEST_SITE_POSTAL_ADDRESS=1 Harbour Street, Gazetteville",
		)
		c.ok("lists", "add", "daily", "--title", "The Daily", "--from", "Gazette <digest@gazette.example>")
		c.ok("subscribers", "add", "ann@example.org", "--name", "Ann", "--list", "daily")
		c.ok("subscribers", "add", "bob@example.org", "--name", "Bob", "--list", "daily")
		c.ok("subscribers", "add", "carol@example.org", "--list", "daily")
		c.ok("feeds", "add", c.file("feed.xml", feed))
		if code, _, errs := c.run("send", "--yes"); code != 1 || !strings.Contains(errs, "editions resume") {
			t.Fatalf("first send (no SMTP server yet): exit %d: %s", code, errs)
		}
		// Newer stories, for the previews: the paused edition has the
		// first ones.
		later := strings.NewReplacer("g1", "g3", "g2", "g4", "/1<", "/3<", "/2<", "/4<", "Harbour reopens", "Ferry timetable changes", "Council votes", "Library extends hours")
		c.ok("feeds", "add", c.file("later.xml", later.Replace(feed)))
		srv, err := capture.Start(smtpAddr, "")
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		if through {
			startDaemon(t, c)
		}
		id := pausedEdition(t, c)
		out := filepath.Join(c.dir, "preview.html")
		dry := filepath.Join(c.dir, "dry")
		script := [][]string{
			{"editions", "list"},
			{"editions", "list", "--json"},
			{"editions", "list", "--list", "nope"},
			{"editions", "show", id},
			{"editions", "show", id, "--json"},
			{"editions", "show", "nope"},
			{"editions", "pause", "nope"},
			{"editions", "pause", id}, // paused already
			{"preview"},
			{"preview", "--json"},
			{"preview", "--as", "bob@example.org"},
			{"preview", "--as", "stranger@example.org", "--out", out},
			{"preview", "--as", "not-an-address"},
			{"preview", "--list", "nope"},
			{"check", "--list", "daily"},
			{"check", "--list", "daily", "--json"},
			{"check", "--list", "nope"},
			{"send", "--to", "editor@example.org"}, // a test copy: no confirmation needed
			{"send", "--to", "editor@example.org", "--json"},
			{"send", "--to", "not-an-address"},
			{"send", "--dry-run", dry},
			{"send", "--dry-run", dry, "--json"},
			{"send", "--dry-run", dry, "--list", "nope"},
			{"send", "--yes"},          // checked first, then refused: this period's edition exists
			{"editions", "resume", id}, // no terminal to ask on
			{"editions", "resume", "nope", "--yes"},
			{"editions", "resume", id, "--yes"},
			{"editions", "resume", id, "--yes"},
			{"editions", "resume", "--yes"},
			{"editions", "show", id},
			{"editions", "list", "--json"},
			{"editions", "pause", id, "--json"},
			// A new edition with the newer stories, sent (through the
			// daemon: by it, the CLI following its run), then nothing new.
			{"send", "--yes", "--force-new"},
			{"send", "--yes", "--force-new", "--json"},
			{"preview"}, // nothing new now
		}
		var r run
		norm := func(s string) string {
			s = progressRe.ReplaceAllString(s, "")
			s = normalize(strings.ReplaceAll(s, c.dir, "DIR"))
			s = portRe.ReplaceAllString(s, "ADDR")
			s = scoreRe.ReplaceAllString(s, "SCORE")
			s = sourceRe.ReplaceAllString(s, `"source": "FEED"`)
			s = slotRe.ReplaceAllString(s, "SLOT")
			s = durRe.ReplaceAllString(s, "DUR")
			return tokenRe.ReplaceAllString(s, "TOKEN")
		}
		for i, args := range script {
			code, so, se := c.run(args...)
			r.results = append(r.results, result{code, norm(so), norm(se)})
			if through && i == 0 {
				if _, err := boltstore.Open(filepath.Join(c.dir, "nd.db"), boltstore.Options{Timeout: -1}); !errors.Is(err, boltstore.ErrLocked) {
					t.Fatalf("the daemon does not hold the database: %v", err)
				}
			}
		}
		html, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("preview --out: %v", err)
		}
		r.html = tokenRe.ReplaceAllString(string(html), "TOKEN")
		ents, err := os.ReadDir(dry)
		if err != nil {
			t.Fatalf("send --dry-run: %v", err)
		}
		for _, e := range ents {
			r.dry = append(r.dry, e.Name())
		}
		r.sent = srv.Count()
		r.args, r.dir = script, c.dir
		return r
	}

	direct := do(newCLI(t, ""), false)
	api := do(daemonCLI(t), true)

	if len(direct.results) != len(api.results) {
		t.Fatalf("%d results directly, %d through the API", len(direct.results), len(api.results))
	}
	var ok, failed int
	for i := range direct.results {
		d, a := direct.results[i], api.results[i]
		if d != a {
			t.Errorf("command %d differs:\ndirect: exit %d\n%s%s\nthrough the API: exit %d\n%s%s", i, d.code, d.out, d.err, a.code, a.out, a.err)
		}
		if d.code == 0 {
			ok++
		} else {
			failed++
		}
	}
	if direct.html != api.html || !strings.Contains(direct.html, "Ferry timetable changes") {
		t.Errorf("preview --out wrote different HTML directly and through the API:\n%s\n----\n%s", direct.html, api.html)
	}
	if strings.Join(direct.dry, " ") != strings.Join(api.dry, " ") || len(direct.dry) != 3 {
		t.Errorf("send --dry-run wrote %v directly and %v through the API; want the 3 readers' messages", direct.dry, api.dry)
	}
	// The test copy, then the resume of the paused edition to the three
	// subscribers, each once, then the new edition to them: in the
	// daemon, not in the CLI (whose own send would have needed the file).
	if direct.sent != 8 || api.sent != 8 {
		t.Errorf("messages sent: %d directly, %d through the daemon; want 8 each", direct.sent, api.sent)
	}
	// --json: one object with the facts of the text line.
	wantJSON := map[string]string{
		"send --to editor@example.org --json": `"test_copy_to": "editor@example.org"`,
		"send --dry-run DIR/dry --json":       `"written": 3`,
		"send --yes --force-new --json":       `"skipped": true`,
	}
	for i, args := range direct.args {
		want, ok := wantJSON[strings.ReplaceAll(strings.Join(args, " "), direct.dir, "DIR")]
		if !ok {
			continue
		}
		delete(wantJSON, strings.ReplaceAll(strings.Join(args, " "), direct.dir, "DIR"))
		var v map[string]any
		if err := json.Unmarshal([]byte(direct.results[i].out), &v); err != nil || !strings.Contains(direct.results[i].out, want) {
			t.Errorf("%s: %q (%v); want a JSON object with %s", strings.Join(args, " "), direct.results[i].out, err, want)
		}
	}
	if len(wantJSON) > 0 {
		t.Errorf("not in the script: %v", wantJSON)
	}
	for _, r := range [][]result{direct.results, api.results} {
		if sent := r[len(r)-3]; sent.code != 0 || !strings.Contains(sent.out, "3 sent, 0 failed") {
			t.Errorf("send --force-new: exit %d, %q; want the result line of 3 sent", sent.code, sent.out)
		}
	}
	t.Logf("%d commands: %d succeeded, %d failed, the same directly and through the API", len(direct.results), ok, failed)
	if ok < 15 || failed < 8 {
		t.Errorf("%d commands succeeded and %d failed: the script lost its coverage", ok, failed)
	}
}

// TestResumeThroughDaemonRunsInTheDaemon: with serve holding the
// database, 'editions resume' has the daemon send, refuses a second
// resume of the same edition while it runs, pauses the daemon's send on
// Ctrl-C, and a later resume completes it with everyone served once.
func TestResumeThroughDaemonRunsInTheDaemon(t *testing.T) {
	const readers = 300 // more than a page of the sender's queue
	smtpAddr := freeAddr(t)
	host, port, _ := strings.Cut(smtpAddr, ":")
	c := daemonCLI(t)
	c.environ = append(c.environ, "NEWSDIGEST_SMTP_HOST="+host, "NEWSDIGEST_SMTP_PORT="+port, "NEWSDIGEST_SMTP_MAX_RETRIES=1")
	id := pauseFirstSend(t, c, readers)

	srv, err := capture.Start(smtpAddr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv.SetReply(func(from, to string) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	stop := serveUntil(t, c)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Environ: c.environ}
		done <- m.Run(ctx, []string{"editions", "resume", id, "--yes"})
	}()
	select {
	case <-entered: // the daemon's send reached the SMTP server
	case code := <-done:
		t.Fatalf("resume ended before sending: exit %d\n%s%s", code, out.String(), errb.String())
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon's send did not reach the SMTP server")
	}
	if code, _, errs := c.run("editions", "resume", id, "--yes"); code != 1 || !strings.Contains(errs, "running already in the daemon") {
		t.Errorf("second resume while the first runs: exit %d: %s", code, errs)
	}
	cancel() // Ctrl-C
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errb.String(), "pausing the daemon's send") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errb.String(), "paused by an operator") || !strings.Contains(errb.String(), "editions resume "+id) {
			t.Errorf("resume after Ctrl-C: exit %d\n%s%s", code, out.String(), errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("resume did not end after Ctrl-C:\n%s%s", out.String(), errb.String())
	}
	show := c.ok("editions", "show", id)
	if !strings.Contains(show, "status:       paused") || strings.Contains(show, ", 0 queued") {
		t.Errorf("after Ctrl-C the edition is paused with deliveries still queued:\n%s", show)
	}
	paused := srv.Count()

	srv.SetReply(nil)
	if out := c.ok("editions", "resume", id, "--yes"); !strings.Contains(out, fmt.Sprintf("%d sent", readers-paused)) {
		t.Errorf("second resume: %s (after %d sent)", out, paused)
	}
	got := map[string]int{}
	for _, m := range srv.Messages() {
		for _, to := range m.To {
			got[to]++
		}
	}
	if len(got) != readers || srv.Count() != readers {
		t.Errorf("%d messages to %d readers, want %d each once", srv.Count(), len(got), readers)
	}
	if logs := stop(); !strings.Contains(logs, "resuming edition (admin API)") || !strings.Contains(logs, "resumed edition sent") {
		t.Errorf("the daemon's log does not show its resumes:\n%s", logs)
	}
}

// pausedEdition returns the ID of the one edition, which must be paused.
func pausedEdition(t *testing.T, c *cli) string {
	t.Helper()
	var eds []struct{ ID, Status string }
	if err := json.Unmarshal([]byte(c.ok("editions", "list", "--json")), &eds); err != nil || len(eds) != 1 || eds[0].Status != "paused" {
		t.Fatalf("editions after a send without an SMTP server: %+v %v", eds, err)
	}
	return eds[0].ID
}

// TestResumeFollowSecondCtrlCAndLostDaemon: following the daemon's send,
// a second Ctrl-C stops waiting at once (the daemon still pauses it);
// and when the daemon goes away while the CLI follows, the CLI says what
// became of the edition and what to do, not only that the connection
// failed.
func TestResumeFollowSecondCtrlCAndLostDaemon(t *testing.T) {
	smtpAddr := freeAddr(t)
	host, port, _ := strings.Cut(smtpAddr, ":")
	c := daemonCLI(t)
	c.environ = append(c.environ, "NEWSDIGEST_SMTP_HOST="+host, "NEWSDIGEST_SMTP_PORT="+port, "NEWSDIGEST_SMTP_MAX_RETRIES=1")
	id := pauseFirstSend(t, c, 300) // more than a page: a pause stops the send
	srv, err := capture.Start(smtpAddr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	entered := make(chan struct{}, 1)
	var mu sync.Mutex
	release := make(chan struct{})
	var releaseOnce sync.Once
	srv.SetReply(func(from, to string) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		mu.Lock()
		r := release
		mu.Unlock()
		<-r
		return nil
	})
	defer func() {
		mu.Lock()
		releaseOnce.Do(func() { close(release) })
		mu.Unlock()
	}()

	// A SIGINT sent to this process goes to the channels registered for
	// it, not to the default action that would end the test binary.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)

	stop := serveUntil(t, c)
	admin := &adminapi.Client{BaseURL: "http://" + envOf(c, "NEWSDIGEST_ADMIN_ADDR"), Token: envOf(c, "NEWSDIGEST_ADMIN_TOKEN")}
	follow := func(ctx context.Context) (chan int, *syncBuffer, *syncBuffer) {
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() {
			m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Environ: c.environ}
			done <- m.Run(ctx, []string{"editions", "resume", id, "--yes"})
		}()
		select {
		case <-entered:
		case code := <-done:
			t.Fatalf("resume ended before sending: exit %d\n%s%s", code, out.String(), errb.String())
		case <-time.After(10 * time.Second):
			t.Fatal("the daemon's send did not reach the SMTP server")
		}
		// The CLI's resume started the daemon's run (entered may be the
		// previous run's last message).
		deadline := time.Now().Add(10 * time.Second)
		for {
			if run, err := admin.Run(id); err == nil && run.Running {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the daemon runs no send of %s:\n%s%s", id, out.String(), errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return done, &out, &errb
	}
	waitFor := func(b *syncBuffer, s string) {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(b.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s", s, b.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, out, errb := follow(ctx)
	cancel() // the first Ctrl-C
	waitFor(errb, "pausing the daemon's send")
	syscall.Kill(os.Getpid(), syscall.SIGINT) // the second, while the SMTP server still holds the send
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errb.String(), "stopped waiting") || !strings.Contains(errb.String(), "editions resume "+id) {
			t.Errorf("second Ctrl-C: exit %d\n%s%s", code, out.String(), errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("a second Ctrl-C did not stop the CLI:\n%s%s", out.String(), errb.String())
	}
	mu.Lock()
	releaseOnce.Do(func() { close(release) })
	mu.Unlock()
	// The daemon's run ends paused; then a new one is followed and the
	// daemon stops under it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		run, err := admin.Run(id)
		if err == nil && !run.Running {
			if !run.Paused {
				t.Fatalf("the daemon's run after two Ctrl-C: %+v", run)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon's send did not stop: %+v %v", run, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	release = make(chan struct{})
	releaseOnce = sync.Once{}
	mu.Unlock()
	select {
	case <-entered: // the first run's
	default:
	}
	done, out, errb = follow(context.Background())
	stopped := make(chan string, 1)
	go func() { stopped <- stop() }()
	// stop() cancels the daemon; its send waits for the SMTP replies
	// while its admin API is gone.
	select {
	case code := <-done:
		got := errb.String()
		if code != 1 || !strings.Contains(got, "lost the daemon's send") || !strings.Contains(got, "editions resume "+id) {
			t.Errorf("daemon gone while following: exit %d\n%s%s", code, out.String(), got)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the CLI did not notice the daemon was gone:\n%s%s", out.String(), errb.String())
	}
	mu.Lock()
	releaseOnce.Do(func() { close(release) })
	mu.Unlock()
	<-stopped
}

// A weekly reader whose day it is not gets no copy: send and editions
// show count them as skipped.
func TestEditionsShowCountsSkipped(t *testing.T) {
	relay, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	c := newCLI(t, relay.Addr())
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	notToday := strings.ToLower(((time.Now().Weekday() + 3) % 7).String())
	c.ok("subscribers", "import", c.file("r.csv", "email,frequency,weekday\nann@example.org,daily,\nbob@example.org,weekly,"+notToday+"\n"))
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))
	if out := c.ok("send", "--list", "daily", "--yes", "--force"); !strings.Contains(out, "1 sent") || !strings.Contains(out, "1 skipped") {
		t.Fatalf("send: %s", out)
	}
	var eds []struct{ ID string }
	if err := json.Unmarshal([]byte(c.ok("editions", "list", "--json")), &eds); err != nil || len(eds) != 1 {
		t.Fatalf("editions list: %v %v", eds, err)
	}
	if show := c.ok("editions", "show", eds[0].ID); !strings.Contains(show, "1 sent, 0 failed, 0 suppressed, 0 queued, 1 skipped") {
		t.Errorf("editions show does not count the skipped reader:\n%s", show)
	}
	if relay.Count() != 1 {
		t.Errorf("%d messages, want ann's only", relay.Count())
	}
}
