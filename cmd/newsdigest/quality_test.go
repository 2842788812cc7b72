package main

// The email quality gates of .ci/run: the sample digest (the demo's data,
// composed by the real engine with a production-like configuration) and
// the system emails go through SpamAssassin, Mailpit and headless
// Chromium. Each test skips with a one-line reason when its program is
// missing, and fails instead under CI=true.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"newsdigest/cmd/newsdigest/internal/tooltest"
	"newsdigest/digest/lint"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
)

// sampleSite runs the demo into a temporary folder and returns a CLI on
// its database, configured like a real site (https base URL, branding,
// postal address), with a second list "weekly" that has one confirmed
// reader and every demo story still to send.
func sampleSite(t *testing.T, env ...string) *cli {
	t.Helper()
	dir := t.TempDir()
	demo := &cli{t: t, dir: dir}
	demo.ok("demo", "--out", dir)
	c := &cli{t: t, dir: dir, environ: append([]string{
		"NEWSDIGEST_DB=" + filepath.Join(dir, "demo.db"),
		"NEWSDIGEST_HTTP_BASE_URL=https://harbourgazette.example/newsletter",
		"NEWSDIGEST_SITE_NAME=The Harbour Gazette",
		"NEWSDIGEST_SITE_URL=https://harbourgazette.example/",
		"NEWSDIGEST_SITE_LOGO_URL=https://harbourgazette.example/logo.png",
		"NEWSDIGEST_SITE_POSTAL_ADDRESS=The Harbour Gazette, 1 Quay Street, Port Example, EX1 2AB",
		"NEWSDIGEST_SITE_FOOTER=Independent local news for Port Example since 1902.",
		"NEWSDIGEST_MAIL_UNSUBSCRIBE_MAILTO=unsubscribe@harbourgazette.example",
	}, env...)}
	c.ok("lists", "add", "weekly", "--title", "The Weekly", "--from", "The Harbour Gazette <digest@harbourgazette.example>",
		"--reply-to", "newsroom@harbourgazette.example", "--top", "5", "--recent", "5")
	c.ok("subscribers", "add", "ann.reader@example.org", "--name", "Ann Reader", "--list", "weekly")
	return c
}

// sampleDigest is the sample digest as 'send' composes it, written by a
// dry run.
func sampleDigest(t *testing.T) []byte {
	t.Helper()
	c := sampleSite(t)
	out := filepath.Join(c.dir, "dry")
	c.ok("send", "--list", "weekly", "--dry-run", out)
	files, _ := filepath.Glob(filepath.Join(out, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("dry run wrote %d files, want 1", len(files))
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if r := lint.Check(raw, lint.Options{PostalAddress: "The Harbour Gazette, 1 Quay Street, Port Example, EX1 2AB"}); len(r.Findings) > 0 {
		t.Errorf("the sample digest has findings: %v", r.Findings)
	}
	return raw
}

// systemEmails are the emails newsdigest sends on its own behalf, composed
// the way digest/web composes them.
func systemEmails(t *testing.T) map[string][]byte {
	t.Helper()
	sys, err := render.NewSystem("")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	brand := render.Brand{
		SiteName: "The Harbour Gazette", SiteURL: "https://harbourgazette.example/",
		PostalAddress: "The Harbour Gazette, 1 Quay Street, Port Example, EX1 2AB",
	}
	out := map[string][]byte{}
	cm, err := sys.Confirmation(render.Confirmation{
		Brand: brand, ListTitles: []string{"The Daily", "The Weekly"},
		ConfirmURL: "https://harbourgazette.example/newsletter/confirm/AQEBEHaAmPRxtbHCgeMCgqTu2rsFZGFpbHkA.gBSoI8rF7lPCsEtLNubDStz",
		Expires:    now.Add(7 * 24 * time.Hour),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	out["confirmation"] = buildSystem(t, cm, now)
	if r := lint.Check(out["confirmation"], lint.Options{System: true}); len(r.Findings) > 0 {
		t.Errorf("the confirmation email has findings: %v", r.Findings)
	}
	// The welcome email goes to a subscriber: list mail, with the
	// headers and links digest/web gives it, judged by the list rules.
	const base = "https://harbourgazette.example/newsletter"
	unsub := base + "/unsubscribe/AgEBEHaAmPRxtbHCgeMCgqTu2rsFZGFpbHkA.Yh2kQ0nX8sVbE1Lw3RrPqg"
	wm, err := sys.Welcome(render.Welcome{
		Brand: brand, ListTitles: []string{"The Weekly"}, Weekly: true, SendTime: "07:00", TimeZone: "Europe/London",
		ArchiveURL:     base + "/archive",
		PreferencesURL: base + "/preferences/AwEBEHaAmPRxtbHCgeMCgqTu2rsFZGFpbHkA.k9Vd0a7yQmE2sPjXcL4nTw",
		UnsubscribeURL: unsub,
	})
	if err != nil {
		t.Fatal(err)
	}
	out["welcome"] = buildSystem(t, wm, now, func(m *mailer.Message) {
		m.ListID = "The Weekly <weekly.harbourgazette.example>"
		m.UnsubscribeURL = unsub
		m.UnsubscribeMailto = "unsubscribe@harbourgazette.example?subject=unsubscribe%20" + unsub[strings.LastIndexByte(unsub, '/')+1:]
		m.FeedbackID = "welcome:weekly:newsdigest"
	})
	if r := lint.Check(out["welcome"], lint.Options{PostalAddress: brand.PostalAddress}); len(r.Findings) > 0 {
		t.Errorf("the welcome email has findings: %v", r.Findings)
	}
	return out
}

func buildSystem(t *testing.T, sm render.SystemMail, now time.Time, edit ...func(*mailer.Message)) []byte {
	t.Helper()
	msg := mailer.Message{
		From: "The Harbour Gazette <digest@harbourgazette.example>", To: "ann.reader@example.org",
		Subject: sm.Subject, Date: now, MessageID: mailer.NewMessageID("harbourgazette.example"),
		Text: sm.Text, HTML: sm.HTML,
	}
	for _, e := range edit {
		e(&msg)
	}
	m, err := mailer.Build(msg)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var (
	saScore = regexp.MustCompile(`(?m)^X-Spam-Status: \w+, score=(-?[0-9.]+) required=[0-9.]+ tests=((?:[^\n]|\n[ \t])*)`)
	saRule  = regexp.MustCompile(`(?m)^\s*(-?[0-9.]+)\s+([A-Z0-9_]+)\s+(.*)$`)
)

// TestQualitySpamAssassin scores the sample digest and the system emails
// with SpamAssassin's local rules (no network tests): each must score at
// most 1.0.
func TestQualitySpamAssassin(t *testing.T) {
	sa := tooltest.Need(t, "spamassassin", "/usr/bin/spamassassin")
	msgs := systemEmails(t)
	msgs["digest"] = sampleDigest(t)
	prefs := filepath.Join(t.TempDir(), "user_prefs")
	if err := os.WriteFile(prefs, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, raw := range msgs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(sa, "-L", "-t", "-p", prefs)
			cmd.Stdin = bytes.NewReader(raw)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil && len(out) == 0 {
				t.Fatalf("spamassassin: %v\n%s", err, stderr.String())
			}
			m := saScore.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no X-Spam-Status in spamassassin's output:\n%s", out)
			}
			score, err := strconv.ParseFloat(string(m[1]), 64)
			if err != nil {
				t.Fatal(err)
			}
			tests := strings.Join(strings.Fields(string(m[2])), "")
			t.Logf("%s: score %.1f, tests %s", name, score, tests)
			if score > 1.0 {
				var fired []string
				if i := bytes.Index(out, []byte("Content analysis details")); i >= 0 {
					for _, r := range saRule.FindAllSubmatch(out[i:], -1) {
						if v, _ := strconv.ParseFloat(string(r[1]), 64); v != 0 {
							fired = append(fired, fmt.Sprintf("%s %s (%s)", r[1], r[2], strings.TrimSpace(string(r[3]))))
						}
					}
				}
				t.Errorf("%s scores %.1f, want at most 1.0; rules: %s", name, score, strings.Join(fired, "; "))
			}
		})
	}
}

// TestQualityMailpit sends the sample digest over SMTP with the real
// sender to Mailpit, then asks Mailpit's API about it: it is there, its
// List-Unsubscribe parses without errors, and its HTML check finds at
// least 95 % of what it uses supported by mail clients.
func TestQualityMailpit(t *testing.T) {
	bin := tooltest.Need(t, "mailpit", tooltest.GoBin())
	dir := t.TempDir()
	smtpPort, httpPort := tooltest.FreePort(t), tooltest.FreePort(t)
	cmd := exec.Command(bin, "--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort), "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--database", filepath.Join(dir, "mailpit.db"), "--disable-version-check", "--smtp-disable-rdns", "--quiet")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting mailpit: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1", httpPort)
	get := func(path string, v any) error {
		resp, err := http.Get(api + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
		}
		return json.Unmarshal(b, v)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var info map[string]any
		if err := get("/info", &info); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("mailpit did not answer: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	c := sampleSite(t, "NEWSDIGEST_SMTP_HOST=127.0.0.1", "NEWSDIGEST_SMTP_PORT="+strconv.Itoa(smtpPort), "NEWSDIGEST_SMTP_TLS=none")
	if out := c.ok("send", "--list", "weekly", "--yes"); !strings.Contains(out, "1 sent") {
		t.Fatalf("send: %s", out)
	}

	var list struct {
		Messages []struct {
			ID      string
			Subject string
		}
	}
	if err := get("/messages", &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Messages) != 1 || !strings.HasPrefix(list.Messages[0].Subject, "The Weekly: ") {
		t.Fatalf("mailpit lists %+v, want the one digest", list.Messages)
	}
	id := list.Messages[0].ID

	var msg struct {
		ListUnsubscribe struct {
			Header, Errors, HeaderPost string
			Links                      []string
		}
		HTML string
		Text string
	}
	if err := get("/message/"+id, &msg); err != nil {
		t.Fatal(err)
	}
	lu := msg.ListUnsubscribe
	if lu.Errors != "" {
		t.Errorf("mailpit's List-Unsubscribe check: %s (header %q)", lu.Errors, lu.Header)
	}
	if lu.HeaderPost != "List-Unsubscribe=One-Click" || len(lu.Links) != 2 ||
		!strings.HasPrefix(lu.Links[0], "https://harbourgazette.example/newsletter/unsubscribe/") || !strings.HasPrefix(lu.Links[1], "mailto:") {
		t.Errorf("mailpit's List-Unsubscribe summary: %+v", lu)
	}
	if msg.HTML == "" || msg.Text == "" {
		t.Errorf("mailpit sees HTML %d bytes, text %d bytes: want both parts", len(msg.HTML), len(msg.Text))
	}

	var check struct {
		Total struct {
			Tests                           int
			Nodes                           int
			Supported, Partial, Unsupported float64
		}
		Warnings []struct {
			Slug, Title string
			Score       struct {
				Found                           int
				Supported, Partial, Unsupported float64
			}
		}
	}
	if err := get("/message/"+id+"/html-check", &check); err != nil {
		t.Fatal(err)
	}
	var warns []string
	for _, w := range check.Warnings {
		// Mailpit's total is 100 minus the worst feature's share of
		// partial and of unsupported support, weighted by how often the
		// feature occurs: show each feature's weight.
		weight := (w.Score.Partial + w.Score.Unsupported) * float64(w.Score.Found) / float64(max(check.Total.Nodes, 1))
		warns = append(warns, fmt.Sprintf("%s ×%d (%.1f%%)", w.Slug, w.Score.Found, weight))
	}
	t.Logf("mailpit HTML check: %.1f%% supported, %.1f%% partial, %.1f%% unsupported over %d tests and %d nodes; warnings: %s",
		check.Total.Supported, check.Total.Partial, check.Total.Unsupported, check.Total.Tests, check.Total.Nodes, strings.Join(warns, ", "))
	if check.Total.Tests == 0 || check.Total.Supported < 95 {
		t.Errorf("mailpit HTML check: %.1f%% supported, want at least 95%%; warnings: %s", check.Total.Supported, strings.Join(warns, ", "))
	}
}

// probeJS runs inside the rendered email and reports its layout to the
// host page.
const probeJS = `<script>(function(){
var d=document.documentElement, w=window.innerWidth, imgs=[].slice.call(document.images), wide=[];
[].forEach.call(document.querySelectorAll('body *'), function(e){var b=e.getBoundingClientRect();
 if(b.width>0&&b.height>0&&b.right>w+0.5) wide.push(e.tagName.toLowerCase()+(e.className?'.'+e.className:'')+' right='+Math.round(b.right));});
var r={innerWidth:w, scrollWidth:Math.max(d.scrollWidth, document.body.scrollWidth), images:imgs.length,
 noAlt:imgs.filter(function(i){return !i.hasAttribute('alt')||!i.alt.trim();}).map(function(i){return i.src;}), wide:wide.slice(0,5)};
var p=parent.document.createElement('pre'); p.id='nd-probe'; p.textContent=JSON.stringify(r); parent.document.body.appendChild(p);
})();</script>`

var probeOut = regexp.MustCompile(`<pre id="nd-probe">([^<]*)</pre>`)

// TestQualityChromium renders the sample digest's HTML in headless
// Chromium at 600 px and 375 px: nothing may scroll sideways, and every
// image has alt text. Set ND_SCREENSHOT_DIR to keep screenshots.
func TestQualityChromium(t *testing.T) {
	bin := tooltest.Need(t, "chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
	_, htmlPart := parts(t, sampleDigest(t))
	dir := t.TempDir()
	shots := os.Getenv("ND_SCREENSHOT_DIR")
	for _, width := range []int{600, 375} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			doc := strings.Replace(string(htmlPart), "</body>", probeJS+"</body>", 1)
			host := fmt.Sprintf(`<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0"><iframe style="border:0;display:block;width:%dpx;height:4000px" srcdoc="%s"></iframe></body></html>`,
				width, html.EscapeString(doc))
			page := filepath.Join(dir, fmt.Sprintf("digest-%d.html", width))
			if err := os.WriteFile(page, []byte(host), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--user-data-dir=" + filepath.Join(dir, fmt.Sprintf("profile-%d", width)),
				fmt.Sprintf("--window-size=%d,1600", max(width, 500))}
			out, err := runChromium(bin, append(args, "--dump-dom", "file://"+page)...)
			if err != nil {
				t.Fatalf("chromium: %v\n%s", err, out)
			}
			m := probeOut.FindSubmatch(out)
			if m == nil {
				t.Fatalf("the probe did not report; chromium printed:\n%.2000s", out)
			}
			var r struct {
				InnerWidth, ScrollWidth, Images int
				NoAlt, Wide                     []string
			}
			if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &r); err != nil {
				t.Fatal(err)
			}
			t.Logf("width %d: viewport %d, content %d, %d images", width, r.InnerWidth, r.ScrollWidth, r.Images)
			if r.InnerWidth != width {
				t.Fatalf("viewport is %d px, want %d", r.InnerWidth, width)
			}
			if r.ScrollWidth > r.InnerWidth || len(r.Wide) > 0 {
				t.Errorf("scrolls sideways at %d px: content %d px wide; elements past the edge: %v", width, r.ScrollWidth, r.Wide)
			}
			if r.Images == 0 {
				t.Errorf("no images rendered: the sample digest should show the story images and the logo")
			}
			if len(r.NoAlt) > 0 {
				t.Errorf("images without alt text: %v", r.NoAlt)
			}
			if shots != "" {
				png := filepath.Join(shots, fmt.Sprintf("digest-%d.png", width))
				if out, err := runChromium(bin, append(args[:len(args)-1], fmt.Sprintf("--window-size=%d,2400", max(width, 500)),
					"--screenshot="+png, "file://"+page)...); err != nil {
					t.Errorf("screenshot: %v\n%s", err, out)
				}
			}
		})
	}
}

func runChromium(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return append(stdout.Bytes(), stderr.Bytes()...), err
		}
		return stdout.Bytes(), nil
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		return stderr.Bytes(), fmt.Errorf("chromium did not finish in 60s")
	}
}

// parts returns the decoded text and HTML parts of a message.
func parts(t *testing.T, raw []byte) (text, htmlPart []byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			text = b
		case "text/html":
			htmlPart = b
		}
	}
	if htmlPart == nil {
		t.Fatal("no HTML part")
	}
	return text, htmlPart
}
