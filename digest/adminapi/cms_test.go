package adminapi

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

func TestCMSPushThroughClient(t *testing.T) {
	st, _, c := start(t)

	// One article, as an object, with hostile HTML.
	one := `{"guid":"cms-1","link":"https://news.example.org/a/1","title":"  Harbour\r\n<b>reopens</b> ",
		"summary":"<p onclick=\"x()\">Ships <script>alert(1)</script>are back. <a href=\"javascript:evil()\">more</a></p>",
		"image":"https://img.example.org/1.jpg","categories":["Harbour"],"published":"2026-11-27T06:00:00Z","views":40}`
	res, err := c.PushArticles([]byte(one))
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Updated != 0 || len(res.Rejected) != 0 {
		t.Fatalf("first push: %+v", res)
	}
	a, err := st.GetArticle(digest.ArticleID("cms-1", ""))
	if err != nil {
		t.Fatal(err)
	}
	if a.Title != "Harbour reopens" || a.Source != "cms" || a.Views != 40 {
		t.Errorf("stored: title %q, source %q, views %d", a.Title, a.Source, a.Views)
	}
	for _, bad := range []string{"script", "onclick", "javascript:", "alert"} {
		if strings.Contains(a.SummaryHTML, bad) {
			t.Errorf("summary keeps %q: %s", bad, a.SummaryHTML)
		}
	}

	// A batch: the same GUID again (an update, not a copy), a new one, a
	// popularity update, one for an unknown GUID, and two bad entries.
	batch := `[
		{"guid":"cms-1","link":"https://news.example.org/a/1","title":"Harbour reopens at last","published":"2026-11-27T06:00:00Z"},
		{"guid":"cms-2","link":"https://news.example.org/a/2","title":"Ferry strike"},
		{"guid":"cms-1","views":90},
		{"guid":"ghost","views":5},
		{"guid":"cms-3","link":"ftp://news.example.org/a/3","title":"Bad link"},
		{"guid":"cms-4","title":"No link","views":-1}
	]`
	res, err = c.PushArticles([]byte(batch))
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Updated != 1 || res.ViewsUpdated != 1 || !reflect.DeepEqual(res.Unknown, []string{"ghost"}) {
		t.Fatalf("batch: %+v", res)
	}
	if len(res.Rejected) != 2 || res.Rejected[0].Entry != 5 || res.Rejected[1].Entry != 6 {
		t.Fatalf("rejected: %+v", res.Rejected)
	}
	all, _ := st.Articles(time.Time{})
	if len(all) != 2 {
		t.Fatalf("%d articles stored, want 2 (idempotent by GUID)", len(all))
	}
	a, _ = st.GetArticle(digest.ArticleID("cms-1", ""))
	if a.Title != "Harbour reopens at last" || a.Views != 90 {
		t.Errorf("after update: %q, %d views", a.Title, a.Views)
	}

	// The same batch again changes nothing new.
	res, err = c.PushArticles([]byte(batch))
	if err != nil || res.Added != 0 || res.Updated != 2 {
		t.Fatalf("repeat: %+v, %v", res, err)
	}

	// Not JSON, or the wrong shape: 400 invalid.
	for _, body := range []string{`"just a string"`, `[1, 2`} {
		if _, err := c.PushArticles([]byte(body)); err == nil {
			t.Errorf("push %s: no error", body)
		} else if ae, ok := err.(*APIError); ok && ae.Code != "invalid" {
			t.Errorf("push %s: %v", body, err)
		}
	}
}

func TestEditionStatsSameThroughClient(t *testing.T) {
	st, _, c := start(t)
	t0 := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	arts := []digest.Article{
		{ID: "a1", Title: "Storm", Link: "https://x.example/1", Published: t0},
		{ID: "a2", Title: "Ferry", Link: "https://x.example/2", Published: t0},
	}
	if _, _, err := st.UpsertArticles(arts); err != nil {
		t.Fatal(err)
	}
	ed := digest.Edition{ID: "daily-1", List: "daily", Created: t0, Status: digest.EditionSent,
		Stories: digest.Selection{Top: []digest.Pick{{Article: arts[0], Section: digest.SectionTop}}, Recent: []digest.Pick{{Article: arts[1], Section: digest.SectionRecent}}}}
	if _, err := st.CreateEdition(ed); err != nil {
		t.Fatal(err)
	}
	sub := subscribers.Subscriber{Email: "ann@example.org", SendHour: -1, Frequency: subscribers.Daily}
	sub.SetStatus("daily", subscribers.Unsubscribed, t0.Add(time.Hour))
	if err := st.AddSubscriber(sub); err != nil {
		t.Fatal(err)
	}
	if _, err := st.QueueDeliveries(ed.ID, []string{"ann@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDeliveries([]digest.Delivery{{Edition: ed.ID, Email: "ann@example.org", Status: digest.DeliverySent}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := st.RecordClick(ed.ID, "a2"); err != nil {
			t.Fatal(err)
		}
	}
	direct, err := Direct{st}.EditionStats(ed.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := EditionStats{Edition: "daily-1", List: "daily", Status: "sent", Sent: 1, Clicks: 3, Unsubscribes: 1,
		Stories: []StoryStats{{Article: "a1", Title: "Storm", Section: "top"}, {Article: "a2", Title: "Ferry", Section: "recent", Clicks: 3}}}
	if !reflect.DeepEqual(direct, want) {
		t.Fatalf("direct:\n%+v\nwant\n%+v", direct, want)
	}
	api, err := c.EditionStats(ed.ID)
	if err != nil || !reflect.DeepEqual(api, direct) {
		t.Fatalf("through the client: %+v, %v", api, err)
	}
	if _, err := c.EditionStats("nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown edition: %v", err)
	}
}
