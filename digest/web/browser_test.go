package web

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/digest/mailer"
	"newsdigest/subscribers"
)

// findChromium returns the browser for the browser tests: Debian's
// chromium. Under CI=true its absence fails the test.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found, and CI=true requires the browser tests (apt-get install chromium)")
	}
	t.Skip("chromium not found: browser tests skipped (they run with CI=true)")
	return ""
}

// browser starts a headless chromium with a new empty profile, sized like
// a phone (375 px wide).
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := findChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	err := chromedp.Do(bctx,
		chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"})
			return err
		}),
	)
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// page checks the page shown now: it contains want, does not scroll
// sideways at 375 px, and is saved as a screenshot under dir.
func checkPage(t *testing.T, ctx context.Context, dir, name, want string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("body"))); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// After a click the old page may still show for a moment: wait for
	// the text the new one must have.
	deadline := time.Now().Add(15 * time.Second)
	for {
		body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err == nil && strings.Contains(body, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: page lacks %q (%v):\n%s", name, want, err, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= document.documentElement.clientWidth`))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	width, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.clientWidth`))
	if !fits || width != 375 {
		sw, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		t.Errorf("%s: scrolls sideways at %d px wide (content %d px)", name, width, sw)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("%s: screenshot: %v", name, err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, shot, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s (%d bytes)", name, p, len(shot))
}

var unsubLinkRe = regexp.MustCompile(`href="(https?://[^"]+/unsubscribe/[A-Za-z0-9_.-]+)"`)

// TestBrowserSubscriberJourney walks a subscriber through the pages in a
// real browser: sign up through the form, confirm from the email, change
// preferences, then unsubscribe from a digest sent by the delivery engine;
// the store is checked after each step.
func TestBrowserSubscriberJourney(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t)
	shots := t.TempDir()
	if d := os.Getenv("SCREENSHOT_DIR"); d != "" { // to keep them: SCREENSHOT_DIR=/some/dir go test -run Browser
		shots = d
	}
	now := e.clock.Now()
	if _, _, err := e.st.UpsertArticles([]digest.Article{
		{ID: "a1", Link: "https://gazette.example/tide", Title: "Tide tables for the week", SummaryText: "High water at dawn.", Categories: []string{"Harbour"}, Published: now.Add(-time.Hour), Views: 500},
		{ID: "a2", Link: "https://gazette.example/rain", Title: "Rain returns to the coast", Categories: []string{"Weather"}, Published: now.Add(-2 * time.Hour), Views: 300},
	}); err != nil {
		t.Fatal(err)
	}
	const addr = "walker@example.org"

	// 1. Subscribe through the form.
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/subscribe"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), addr),
		chromedp.SendKeys(chromedp.ID("name"), "Wal <b>Ker</b>"),
		chromedp.Click(chromedp.CSS(`input[name="lists"][value="daily"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, ctx, shots, "1-subscribe-form", "Email address")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatal(err)
	}
	checkPage(t, ctx, shots, "2-check-inbox", "Check your inbox")
	if st := e.sub(addr).StatusOn("daily"); st != subscribers.Pending {
		t.Fatalf("after the form: %q, want pending", st)
	}

	// 2. The confirmation email, from the SMTP server.
	msgs := e.waitMail()
	if len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
	link := confirmLink(t, parseMail(t, msgs[0].Data))
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	checkPage(t, ctx, shots, "3-confirmed", "You are subscribed")
	if msgs = e.waitMail(); len(msgs) != 2 || !strings.HasPrefix(parseMail(t, msgs[1].Data).header.Get("Subject"), "Welcome to ") {
		t.Fatalf("after confirming: %d mails, want the confirmation and the welcome", len(msgs))
	}
	sub := e.sub(addr)
	if sub.StatusOn("daily") != subscribers.Confirmed || sub.Consent.Source != "form" || sub.Consent.IP == "" {
		t.Fatalf("after confirming: %+v", sub)
	}

	// 3. Preferences, reached from the confirmation page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("a.button")), chromedp.WaitVisible(chromedp.ID("timezone"))); err != nil {
		t.Fatal(err)
	}
	checkPage(t, ctx, shots, "4-preferences", "Your preferences")
	// No zone stored yet: the page's script picked the browser's.
	tz, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("timezone")))
	if err != nil || tz != "Asia/Tokyo" {
		t.Errorf("time zone preselected from the browser: %q, %v", tz, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("timezone"), "Europe/Paris"),
		chromedp.SetValue(chromedp.ID("send_hour"), "7"),
		chromedp.Click(chromedp.CSS(`input[name="frequency"][value="weekly"]`)),
		chromedp.Click(chromedp.CSS(`input[name="lists"][value="weekly"]`)),
		chromedp.Click(chromedp.CSS(`input[name="topics"][value="Harbour"]`)),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	)
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, ctx, shots, "5-preferences-saved", "Your preferences are saved")
	sub = e.sub(addr)
	if sub.Timezone != "Europe/Paris" || sub.SendHour != 7 || sub.Frequency != "weekly" ||
		sub.StatusOn("daily") != subscribers.Confirmed || sub.StatusOn("weekly") != subscribers.Confirmed ||
		len(sub.Topics) != 1 || sub.Topics[0] != "Harbour" {
		t.Fatalf("after saving preferences: %+v", sub)
	}

	// 4. A digest sent by the delivery engine; its unsubscribe link. A
	// weekly reader gets it on their weekday (attribute "weekday",
	// default Monday): 2026-11-27 is a Friday.
	if sub.Attrs == nil {
		sub.Attrs = map[string]string{}
	}
	sub.Attrs["weekday"] = "friday"
	if err := e.st.PutSubscriber(sub); err != nil {
		t.Fatal(err)
	}
	eng := &delivery.Engine{
		Store: e.st, Renderer: e.srv.Renderer, Signer: e.signer, Clock: e.clock,
		BaseURL: e.ts.URL, Brand: e.srv.Brand,
		Dial: delivery.SMTPDialer(mailer.Config{Host: e.smtp.Host(), Port: e.smtp.Port(), TLS: "none", Timeout: 10 * time.Second}),
	}
	ed, _, err := eng.Start("daily")
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Deliver(context.Background(), ed.ID)
	if err != nil || res.Sent != 1 {
		t.Fatalf("digest: %+v %v", res, err)
	}
	msgs = e.smtp.Messages()
	dg := parseMail(t, msgs[len(msgs)-1].Data)
	m := unsubLinkRe.FindStringSubmatch(dg.html)
	if m == nil {
		t.Fatal("no unsubscribe link in the digest")
	}
	if h := dg.header.Get("List-Unsubscribe"); !strings.Contains(h, "<"+m[1]+">") {
		t.Errorf("List-Unsubscribe %q does not carry the visible link %q", h, m[1])
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(m[1]), chromedp.WaitVisible(chromedp.ID("unsubscribe"))); err != nil {
		t.Fatal(err)
	}
	checkPage(t, ctx, shots, "6-unsubscribe", "Stop receiving")
	if e.sub(addr).StatusOn("daily") != subscribers.Confirmed {
		t.Fatal("opening the unsubscribe page unsubscribed")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("unsubscribe")), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatal(err)
	}
	checkPage(t, ctx, shots, "7-unsubscribed", "You are unsubscribed")
	sub = e.sub(addr)
	if sub.StatusOn("daily") != subscribers.Unsubscribed || sub.StatusOn("weekly") != subscribers.Confirmed {
		t.Fatalf("after unsubscribing: %+v", sub.Lists)
	}

	// 5. The archive shows the sent edition.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.ts.URL+"/archive")); err != nil {
		t.Fatal(err)
	}
	checkPage(t, ctx, shots, "8-archive", "Past editions")
	if err := chromedp.Do(ctx, chromedp.Navigate(e.ts.URL+"/archive/"+ed.ID)); err != nil {
		t.Fatal(err)
	}
	checkPage(t, ctx, shots, "9-archive-edition", "Tide tables for the week")
	t.Logf("screenshots in %s", shots)
}
