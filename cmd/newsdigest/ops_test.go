package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"newsdigest/digest/boltstore"
	"newsdigest/digest/capture"
	"newsdigest/digest/delivery"
	"newsdigest/digest/metrics"
	"newsdigest/subscribers"
)

const opsSecret = "ops-test-secret-0123456789abcdef-0123456789"

// serveUntil runs "newsdigest serve" with c's environment and returns a
// function that stops it (SIGTERM-like: the context ends) and returns its
// logs, failing the test if it did not stop cleanly.
func serveUntil(t *testing.T, c *cli) (stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		m := &Main{Stdin: strings.NewReader(""), Stdout: &logs, Stderr: &logs, Environ: c.environ}
		done <- m.Run(ctx, []string{"serve"})
	}()
	admin := envOf(c, "NEWSDIGEST_ADMIN_ADDR")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if res, err := http.Get("http://" + admin + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	stop = func() string {
		if stopped {
			return logs.String()
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d:\n%s", code, logs.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("serve did not stop:\n%s", logs.String())
		}
		return logs.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

func envOf(c *cli, name string) string {
	for _, kv := range c.environ {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "digest", "bounce", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// subscriberID reads a subscriber's ID through the CLI.
func subscriberID(t *testing.T, c *cli, email string) string {
	var sub struct {
		ID     string              `json:"id"`
		Events []subscribers.Event `json:"events"`
	}
	if err := json.Unmarshal([]byte(c.ok("subscribers", "show", email, "--json")), &sub); err != nil {
		t.Fatal(err)
	}
	return sub.ID
}

// TestBounceListenerSuppressesBeforeNextEdition runs the daemon with its
// bounce listener, mails it a DSN for a subscriber's VERP address over
// SMTP, and checks that the next edition skips that subscriber; on the way
// it scrapes /metrics, probes /healthz and /readyz, and takes a backup
// through the admin API.
func TestBounceListenerSuppressesBeforeNextEdition(t *testing.T) {
	relay, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	c := newCLI(t, relay.Addr())
	bounceAddr := freeAddr(t)
	c.environ = append(c.environ,
		"NEWSDIGEST_SECRET="+opsSecret,
		"NEWSDIGEST_ADMIN_TOKEN=ops-admin-token-0123456789",
		"NEWSDIGEST_ADMIN_ADDR="+freeAddr(t),
		"NEWSDIGEST_HTTP_ADDR="+freeAddr(t),
		"NEWSDIGEST_MAIL_BOUNCE_ADDRESS=bounces@bounce.gazette.example",
		"NEWSDIGEST_BOUNCE_ADDR="+bounceAddr,
		"NEWSDIGEST_BOUNCE_KEEP_DIR="+filepath.Join(c.dir, "kept"),
		"NEWSDIGEST_SHUTDOWN_GRACE=5s",
	)
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	c.ok("lists", "add", "weekly", "--from", "Gazette <digest@gazette.example>")
	c.ok("subscribers", "add", "ann@mail.example.net", "--list", "daily", "--list", "weekly")
	c.ok("subscribers", "add", "bob@example.org", "--list", "daily", "--list", "weekly")
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))
	annID := subscriberID(t, c, "ann@mail.example.net")

	// The first edition: each copy carries its VERP return path.
	if out := c.ok("send", "--list", "daily", "--yes", "--force"); !strings.Contains(out, "2 sent") {
		t.Fatalf("send: %s", out)
	}
	var verp string
	for _, msg := range relay.Messages() {
		if !strings.HasPrefix(msg.From, "bounces+") || !strings.HasSuffix(msg.From, "@bounce.gazette.example") {
			t.Errorf("envelope sender %q is not a VERP address", msg.From)
		}
		if msg.To[0] == "ann@mail.example.net" {
			verp = msg.From
		}
	}
	signer, err := subscribers.NewSigner([]byte(opsSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := subscribers.VERPToken(verp)
	if !ok {
		t.Fatalf("no VERP token in %q", verp)
	}
	claims, err := signer.VerifyBounce(tok)
	if err != nil || claims.SubscriberID != annID || !claims.OnList("daily") {
		t.Fatalf("VERP token of ann's copy: %+v, %v", claims, err)
	}

	stop := serveUntil(t, c)
	admin := "http://" + envOf(c, "NEWSDIGEST_ADMIN_ADDR")
	if code, body := httpGet(t, admin+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, admin+"/readyz"); code != 200 {
		t.Errorf("readyz with store and relay up: %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+envOf(c, "NEWSDIGEST_HTTP_ADDR")+"/readyz"); code != 200 {
		t.Errorf("public readyz: %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+envOf(c, "NEWSDIGEST_HTTP_ADDR")+"/metrics"); code == 200 && strings.Contains(body, "newsdigest_") {
		t.Error("/metrics is served on the public address")
	}

	// The DSN a relay sends back to ann's VERP return path.
	dsn := strings.ReplaceAll(readTestdata(t, "postfix-hard.eml"), "bounces+ahek7jdpggq3fq6u4x3aogbjhjfvy3l6r6inr5z2je4vwhwu6a7a@", "bounces+"+tok+"@")
	if err := smtp.SendMail(bounceAddr, nil, "", []string{verp}, []byte(dsn)); err != nil {
		t.Fatalf("mailing the DSN to the listener: %v", err)
	}
	// A report without a token is not trusted from the network: kept aside.
	if err := smtp.SendMail(bounceAddr, nil, "", []string{"bounces@bounce.gazette.example"}, []byte(readTestdata(t, "gmail-hard.eml"))); err != nil {
		t.Fatal(err)
	}

	// Through the daemon: the subscriber shows the event and status.
	out := c.ok("subscribers", "show", "ann@mail.example.net")
	if !strings.Contains(out, "hard_bounce") || !strings.Contains(out, "bounced") || !strings.Contains(out, "5.1.1") {
		t.Errorf("subscribers show after the bounce:\n%s", out)
	}
	_, metricsOut := httpGet(t, admin+"/metrics")
	for _, want := range []string{`newsdigest_bounces_total{kind="hard"} 1`, `newsdigest_bounces_total{kind="other"} 1`} {
		if !strings.Contains(metricsOut, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if kept, _ := filepath.Glob(filepath.Join(c.dir, "kept", "*.eml")); len(kept) != 1 {
		t.Errorf("kept aside: %v", kept)
	}

	// A sign-up through the public page: the confirmation mail has a VERP
	// return path too, and the sign-up and the confirmation are counted.
	public := "http://" + envOf(c, "NEWSDIGEST_HTTP_ADDR")
	mailed := len(relay.Messages())
	resp, err := http.PostForm(public+"/subscribe", url.Values{"email": {"cat@example.org"}, "lists": {"daily"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var conf capture.Received
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ms := relay.Messages(); len(ms) > mailed {
			conf = ms[mailed]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no confirmation mail after the sign-up (answer %d)", resp.StatusCode)
		}
	}
	if !strings.HasPrefix(conf.From, "bounces+") || conf.To[0] != "cat@example.org" {
		t.Errorf("confirmation mail: envelope %q -> %v, want a VERP sender to cat", conf.From, conf.To)
	}
	decoded, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(conf.Data)))
	cm := regexp.MustCompile(`/confirm/([A-Za-z0-9_.-]+)`).FindSubmatch(decoded)
	if cm == nil {
		t.Fatalf("no confirm link in:\n%s", decoded)
	}
	if code, body := httpGet(t, public+"/confirm/"+string(cm[1])); code != 200 {
		t.Fatalf("confirm: %d %s", code, body)
	}
	_, metricsOut = httpGet(t, admin+"/metrics")
	for _, want := range []string{"newsdigest_subscribes_total 1\n", "newsdigest_confirms_total 1\n"} {
		if !strings.Contains(metricsOut, want) {
			t.Errorf("/metrics after a sign-up and its confirmation lacks %q", want)
		}
	}

	// A hot backup through the admin API while the daemon holds the file;
	// restore is refused meanwhile.
	backup := filepath.Join(c.dir, "backup.db")
	if out := c.ok("backup", backup); !strings.Contains(out, "admin API") {
		t.Errorf("backup: %s", out)
	}
	if code, _, errs := c.run("restore", backup, "--yes"); code != 1 || !strings.Contains(errs, "held by another process") {
		t.Errorf("restore under a running daemon: exit %d %q", code, errs)
	}
	logs := stop()
	for _, step := range []string{"stopping", "stopped"} {
		if !strings.Contains(logs, step) {
			t.Errorf("logs lack %q:\n%s", step, logs)
		}
	}
	if err := verifyDB(backup); err != nil {
		t.Errorf("backup: %v", err)
	}
	st, err := boltstore.Open(backup, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Suppressed("ann@mail.example.net"); !ok {
		t.Error("the backup lacks the suppression")
	}
	st.Close()

	// The next edition (the other list's) goes to bob only. A new story
	// first: bob already had the others (no story goes out twice).
	fresh := strings.NewReplacer("<guid>g", "<guid>w", "gazette.example/1", "gazette.example/w1", "gazette.example/2", "gazette.example/w2").Replace(sampleFeed)
	c.ok("feeds", "add", c.file("feed-w.xml", strings.Replace(strings.Replace(fresh, "%s", now, 1), "%s", now, 1)))
	before := relay.Count()
	if out := c.ok("send", "--list", "weekly", "--yes", "--force"); !strings.Contains(out, "1 sent") {
		t.Errorf("send: %s", out)
	}
	for _, msg := range relay.Messages()[before:] {
		if msg.To[0] == "ann@mail.example.net" {
			t.Error("the bounced address got the next edition")
		}
	}
	if relay.Count() != before+1 {
		t.Errorf("relay got %d messages, want 1", relay.Count()-before)
	}
}

func TestReadyzSMTPDown(t *testing.T) {
	c := newCLI(t, "127.0.0.1:1") // nothing listens there
	c.environ = append(c.environ, "NEWSDIGEST_ADMIN_TOKEN=ops-admin-token-0123456789",
		"NEWSDIGEST_ADMIN_ADDR="+freeAddr(t), "NEWSDIGEST_HTTP_ADDR="+freeAddr(t))
	serveUntil(t, c)
	if code, body := httpGet(t, "http://"+envOf(c, "NEWSDIGEST_ADMIN_ADDR")+"/readyz"); code != 503 || !strings.Contains(body, "smtp") {
		t.Errorf("readyz with the relay down: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+envOf(c, "NEWSDIGEST_ADMIN_ADDR")+"/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

func TestBouncesProcessCLI(t *testing.T) {
	c := newCLI(t, "")
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	c.ok("subscribers", "add", "ann@mail.example.net")
	c.ok("subscribers", "add", "bob@full.example.com")
	hard := c.file("hard.eml", readTestdata(t, "postfix-hard.eml"))
	soft := c.file("soft.eml", readTestdata(t, "postfix-delayed.eml"))
	junk := c.file("junk.eml", readTestdata(t, "garbage.eml"))
	code, out, errs := c.run("bounces", "process", hard, soft, junk, filepath.Join(c.dir, "missing.eml"))
	if code != 1 || !strings.Contains(errs, "missing.eml") {
		t.Errorf("exit %d, stderr %q: want 1 naming the missing file", code, errs)
	}
	for _, want := range []string{"hard bounce ann@mail.example.net 5.1.1", "soft bounce 1 of 3", "1 hard, 1 soft, 0 complaints, 1 not usable"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var sub struct {
		Lists  map[string]subscribers.Membership `json:"lists"`
		Events []subscribers.Event               `json:"events"`
	}
	if err := json.Unmarshal([]byte(c.ok("subscribers", "show", "ann@mail.example.net", "--json")), &sub); err != nil {
		t.Fatal(err)
	}
	if sub.Lists["daily"].Status != subscribers.Bounced || len(sub.Events) != 1 || sub.Events[0].Source != "hard.eml" {
		t.Errorf("ann: %+v", sub)
	}
	if out := c.ok("subscribers", "show", "bob@full.example.com"); !strings.Contains(out, "soft_bounce") || !strings.Contains(out, "confirmed") {
		t.Errorf("bob:\n%s", out)
	}
}

func TestBackupRestoreCLI(t *testing.T) {
	c := newCLI(t, "")
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	c.ok("subscribers", "add", "ann@example.org")
	backup := filepath.Join(c.dir, "b.db")
	if out := c.ok("backup", backup); !strings.Contains(out, "directly") {
		t.Errorf("backup: %s", out)
	}
	if code, _, _ := c.run("backup", filepath.Join(c.dir, "nd.db")); code != 2 {
		t.Errorf("backup onto the database itself: exit %d", code)
	}
	c.ok("subscribers", "add", "later@example.org")
	// Without a terminal, restore needs --yes.
	if code, _, errs := c.run("restore", backup); code != 2 || !strings.Contains(errs, "--yes") {
		t.Errorf("restore without --yes: %d %q", code, errs)
	}
	out := c.ok("restore", backup, "--yes")
	if !strings.Contains(out, "before-restore") {
		t.Errorf("restore: %s", out)
	}
	if code, _, _ := c.run("subscribers", "show", "later@example.org"); code != 1 {
		t.Error("the restored database still has a subscriber added after the backup")
	}
	c.ok("subscribers", "show", "ann@example.org")
	kept, _ := filepath.Glob(filepath.Join(c.dir, "nd.db.before-restore-*"))
	if len(kept) != 1 || verifyDB(kept[0]) != nil {
		t.Errorf("previous database not kept: %v", kept)
	}
	// A file that is no newsdigest database is refused, nothing changes.
	junk := c.file("junk.db", strings.Repeat("not a database ", 500))
	if code, _, errs := c.run("restore", junk, "--yes"); code != 1 || !strings.Contains(errs, "not a good backup") {
		t.Errorf("restore of junk: %d %q", code, errs)
	}
	c.ok("subscribers", "show", "ann@example.org")
}

// TestMetricsAfterSendAndBackupDuringSend sends an edition through the
// engine as the CLI wires it, with metrics: one address refused (550
// 5.1.1), one deferred once (451), the rest accepted. A hot backup is taken
// while the first message is held in the relay; it must open and pass
// bbolt's check. /metrics then shows the counts.
func TestMetricsAfterSendAndBackupDuringSend(t *testing.T) {
	relay, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	c := newCLI(t, relay.Addr())
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	for _, a := range []string{"ann@example.org", "bad@example.org", "retry@example.org"} {
		c.ok("subscribers", "add", a)
	}
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))

	started, backedUp := make(chan struct{}), make(chan struct{})
	var once, retryOnce sync.Once
	relay.SetReply(func(_, to string) error {
		once.Do(func() { close(started); <-backedUp })
		switch to {
		case "bad@example.org":
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case "retry@example.org":
			var err error
			retryOnce.Do(func() {
				err = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			})
			return err
		}
		return nil
	})

	m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Environ: c.environ}
	if err := m.open(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e, err := m.engine("")
	if err != nil {
		t.Fatal(err)
	}
	met := metrics.New()
	e.Metrics, e.RetryBase = met, 5*time.Millisecond
	ed, _, err := e.Start("daily")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		res delivery.Result
		err error
	}
	done := make(chan result, 1)
	go func() { r, err := e.Deliver(context.Background(), ed.ID); done <- result{r, err} }()

	<-started // a message is in flight
	backup := filepath.Join(c.dir, "during-send.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.store.Backup(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	close(backedUp)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := verifyDB(backup); err != nil {
		t.Errorf("backup taken during the send: %v", err)
	}

	rec := httptest.NewRecorder()
	met.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		"newsdigest_messages_sent_total 2", "newsdigest_messages_failed_total 1", "newsdigest_messages_retried_total 1",
		"newsdigest_queue_depth 0", "newsdigest_edition_duration_seconds_count 1",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("/metrics lacks %q (result %v)", want, r.res)
		}
	}
}

func TestObservedStore(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "nd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	obs := observedStore{st, metrics.New()}
	sub := subscribers.Subscriber{Email: "ann@example.org", Frequency: "daily",
		Lists: map[string]subscribers.Membership{"daily": {Status: subscribers.Confirmed}}}
	if err := st.PutSubscriber(sub); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordEvent("ann@example.org", subscribers.Event{Kind: subscribers.EventSoftBounce}); err != nil {
		t.Fatal(err)
	}
	if err := obs.DeleteSubscriber("ann@example.org"); err != nil {
		t.Fatal(err)
	}
	if evs, _ := st.Events("ann@example.org"); len(evs) != 0 {
		t.Errorf("events survive the deletion: %v", evs)
	}
}
