package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"newsdigest/digest/capture"
)

// TestClickTrackingEndToEnd sends a digest with the CLI, follows a story
// link of the received email on the daemon, and reads the click back in
// `editions show`; with tracking.clicks = false the email keeps the
// original links.
func TestClickTrackingEndToEnd(t *testing.T) {
	srv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := daemonCLI(t)
	smtpHost, smtpPort, _ := strings.Cut(srv.Addr(), ":")
	var httpAddr string
	for _, kv := range c.environ {
		if v, ok := strings.CutPrefix(kv, "NEWSDIGEST_HTTP_ADDR="); ok {
			httpAddr = v
		}
	}
	base := "http://" + httpAddr
	c.environ = append(c.environ, "NEWSDIGEST_SMTP_HOST="+smtpHost, "NEWSDIGEST_SMTP_PORT="+smtpPort, "NEWSDIGEST_HTTP_BASE_URL="+base)
	c.ok("lists", "add", "daily", "--from", "Gazette <digest@gazette.example>")
	c.ok("subscribers", "add", "ann@example.org")
	now := nowRFC1123()
	c.ok("feeds", "add", c.file("feed.xml", sampleFeedAt(now)))
	if out := c.ok("send", "--yes", "--force"); !strings.Contains(out, "1 sent") {
		t.Fatalf("send: %s", out)
	}
	msgs := srv.Messages()
	raw := string(msgs[len(msgs)-1].Data)
	raw = strings.ReplaceAll(raw, "=\r\n", "") // quoted-printable soft breaks
	links := regexp.MustCompile(regexp.QuoteMeta(base)+`/c/[A-Za-z0-9_.=-]+`).FindAllString(raw, -1)
	if len(links) == 0 || strings.Contains(raw, "https://gazette.example/1") {
		t.Fatalf("no click links, or the original link left in the email:\n%s", raw)
	}
	link := strings.ReplaceAll(links[0], "=3D", "=")
	edition := strings.Fields(c.ok("editions", "list"))[8] // first row, first column

	t.Run("daemon", func(t *testing.T) {
		startDaemon(t, c)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://gazette.example/") {
			t.Fatalf("click: %d to %q", res.StatusCode, loc)
		}
	})
	out := c.ok("editions", "show", edition)
	if !strings.Contains(out, "clicks:       1") && !regexp.MustCompile(`clicks:\s+1\n`).MatchString(out) {
		t.Fatalf("editions show after one click:\n%s", out)
	}
	if !regexp.MustCompile(`unsubscribes:\s+0`).MatchString(out) {
		t.Fatalf("editions show: no unsubscribes line:\n%s", out)
	}
	if !strings.Contains(c.ok("articles", "list", "--json"), `"clicks": 1`) {
		t.Fatalf("the click did not reach the article's popularity")
	}

	// Tracking off: a send keeps the original links (another list, so
	// that the edition is a new one even within the same minute).
	c.environ = append(c.environ, "NEWSDIGEST_TRACKING_CLICKS=false")
	c.ok("lists", "add", "weekly", "--from", "Gazette <weekly@gazette.example>")
	c.ok("subscribers", "add", "bob@example.org", "--list", "weekly")
	if out := c.ok("send", "--list", "weekly", "--yes", "--force"); !strings.Contains(out, "1 sent") {
		t.Fatalf("second send: %s", out)
	}
	msgs = srv.Messages()
	raw = strings.ReplaceAll(string(msgs[len(msgs)-1].Data), "=\r\n", "")
	if !strings.Contains(raw, "bob@example.org") || strings.Contains(raw, base+"/c/") || !strings.Contains(raw, "https://gazette.example/1") {
		t.Fatalf("tracking off: click links present or original missing:\n%s", raw)
	}
}
