package web

import (
	"encoding/xml"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

func (e *env) addEdition(list string, slot time.Time, sent int, titles ...string) digest.Edition {
	e.t.Helper()
	var picks []digest.Pick
	for i, ti := range titles {
		picks = append(picks, digest.Pick{Section: digest.SectionTop, Article: digest.Article{
			ID: list + ti, Title: ti, Link: "https://gazette.example/" + url.PathEscape(list) + "/" + string(rune('a'+i)),
			SummaryHTML: "<p>Summary of " + ti + `</p><script>alert("x")</script>`, Published: slot.Add(-time.Hour),
		}})
	}
	ed := digest.Edition{ID: digest.EditionID(list, slot), List: list, Slot: slot, Subject: "Subject " + list + " " + slot.Format("0102"),
		Stories: digest.Selection{Top: picks}}
	if _, err := e.st.CreateEdition(ed); err != nil {
		e.t.Fatal(err)
	}
	ed, err := e.st.UpdateEdition(ed.ID, func(x *digest.Edition) error {
		x.Sent, x.Status, x.Finished = sent, digest.EditionSent, slot.Add(time.Minute)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return ed
}

func TestArchive(t *testing.T) {
	e := newEnv(t)
	if r := e.get("/archive"); r.status != 200 || !strings.Contains(r.body, "No edition has been sent yet") {
		t.Fatalf("empty archive: %d", r.status)
	}
	day := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	older := e.addEdition("daily", day, 120, "Harbour reopens", `<script>alert(1)</script> Storm`)
	newer := e.addEdition("weekly", day.Add(24*time.Hour), 40, "Week in review")
	unsent := e.addEdition("daily", day.Add(48*time.Hour), 0, "Never sent")

	idx := e.get("/archive")
	if idx.status != 200 {
		t.Fatalf("%d", idx.status)
	}
	i1, i2 := strings.Index(idx.body, "/archive/"+newer.ID), strings.Index(idx.body, "/archive/"+older.ID)
	if i1 < 0 || i2 < 0 || i1 > i2 || strings.Contains(idx.body, unsent.ID) {
		t.Errorf("archive index: newest first, sent only:\n%s", idx.body)
	}

	page := e.get("/archive/" + older.ID)
	if page.status != 200 || !strings.Contains(page.body, "Harbour reopens") {
		t.Fatalf("edition page: %d", page.status)
	}
	csp := page.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("edition CSP %q", csp)
	}
	for _, bad := range []string{"<script", "NDSLOT", "/unsubscribe/", "/preferences/"} {
		if strings.Contains(page.body, bad) {
			t.Errorf("edition page contains %q", bad)
		}
	}
	if again := e.get("/archive/" + older.ID); again.body != page.body {
		t.Error("cached page differs")
	}
	for _, p := range []string{"/archive/" + unsent.ID, "/archive/daily-20200101-0000", "/archive/..%2f..%2fetc", "/archive/" + strings.Repeat("a", 200)} {
		if r := e.get(p); r.status != 404 {
			t.Errorf("%s: %d", p, r.status)
		}
	}

	feed := e.get("/archive/feed.xml")
	if feed.status != 200 || !strings.HasPrefix(feed.header.Get("Content-Type"), "application/rss+xml") {
		t.Fatalf("feed: %d %q", feed.status, feed.header.Get("Content-Type"))
	}
	var doc struct {
		Version string `xml:"version,attr"`
		Channel struct {
			Items []struct {
				Title       string `xml:"title"`
				Link        string `xml:"link"`
				PubDate     string `xml:"pubDate"`
				Description string `xml:"description"`
			} `xml:"item"`
		} `xml:"channel"`
	}
	if err := xml.Unmarshal([]byte(feed.body), &doc); err != nil {
		t.Fatal(err)
	}
	items := doc.Channel.Items
	if doc.Version != "2.0" || len(items) != 2 || items[0].Link != e.ts.URL+"/archive/"+newer.ID || items[1].Title != older.Subject {
		t.Fatalf("feed: %+v", doc)
	}
	if _, err := time.Parse(time.RFC1123Z, items[0].PubDate); err != nil {
		t.Errorf("pubDate %q: %v", items[0].PubDate, err)
	}
}

type failingStore struct{ Store }

func (failingStore) Lists() ([]subscribers.List, error) { return nil, errors.New("disk on fire") }

func TestHealth(t *testing.T) {
	e := newEnv(t)
	if r := e.get("/healthz"); r.status != 200 || r.body != "ok\n" {
		t.Errorf("healthz: %d %q", r.status, r.body)
	}
	if r := e.get("/readyz"); r.status != 200 {
		t.Errorf("readyz: %d", r.status)
	}
	e.srv.Store = failingStore{e.st}
	if r := e.get("/readyz"); r.status != 503 {
		t.Errorf("readyz with a failing store: %d", r.status)
	}
	if r := e.get("/subscribe"); r.status != 500 || strings.Contains(r.body, "disk on fire") {
		t.Errorf("internal error: %d, leaks details: %v", r.status, strings.Contains(r.body, "disk on fire"))
	}
}

func TestBasePathAndAssets(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.BaseURL += "/newsletter/" })
	r := e.get("/newsletter/subscribe")
	if r.status != 200 || !strings.Contains(r.body, `action="/newsletter/subscribe"`) || !strings.Contains(r.body, `href="/newsletter/assets/style.css"`) {
		t.Fatalf("%d\n%s", r.status, r.body)
	}
	if r := e.get("/subscribe"); r.status != 200 {
		t.Errorf("a proxy that strips the prefix: %d", r.status)
	}
	if r := e.get("/newsletter/"); r.status != 303 || r.header.Get("Location") != "/newsletter/subscribe" {
		t.Errorf("index: %d %q", r.status, r.header.Get("Location"))
	}
	e.postForm("/newsletter/subscribe", url.Values{"email": {"pre@example.org"}, "lists": {"daily"}})
	msgs := e.waitMail()
	if len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
	link := confirmLink(t, parseMail(t, msgs[0].Data))
	if !strings.HasPrefix(link, e.ts.URL+"/newsletter/confirm/") {
		t.Errorf("confirm link %q", link)
	}
	if r := e.get(link); r.status != 200 {
		t.Errorf("confirm under the prefix: %d", r.status)
	}
	css := e.get("/newsletter/assets/style.css")
	if css.status != 200 || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css: %d %q", css.status, css.header.Get("Content-Type"))
	}
	for _, p := range []string{"/assets/nope.css", "/assets/..%2fweb.go", "/nowhere"} {
		if r := e.get(p); r.status != 404 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
}
