package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/subscribers"
)

var storyRe = regexp.MustCompile(`https://gazette\.example/s/([a-z0-9-]+)`)

// contentFixture is the engine fixture with n readers (no subscribers of
// its own), a list of top 2 + recent 1 and a story supply: stories
// published over the last days with categories, views falling with age.
func contentFixture(t *testing.T) *fixture {
	t.Helper()
	f := setup(t, 0, 2)
	l, err := f.store.GetList("daily")
	if err != nil {
		t.Fatal(err)
	}
	l.TopCount, l.RecentCount, l.Window = 2, 1, 4*24*time.Hour
	if err := f.store.PutList(l); err != nil {
		t.Fatal(err)
	}
	// Replace the fixture's three stories by a supply in two categories.
	for _, a := range []string{"0", "1", "2"} {
		link := "https://gazette.example/story/" + a
		if _, err := f.store.UpdateArticle(digest.ArticleID("", link), func(x *digest.Article) error { x.Excluded = true; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	var arts []digest.Article
	for i := range 12 {
		cat := "Politics"
		if i%3 == 0 {
			cat = "Sport"
		}
		link := fmt.Sprintf("https://gazette.example/s/%s-%02d", strings.ToLower(cat), i)
		arts = append(arts, digest.Article{
			ID: digest.ArticleID("", link), Link: link, Title: fmt.Sprintf("%s story %d", cat, i),
			SummaryText: "Something happened.", Categories: []string{cat},
			Published: now.Add(-time.Duration(i+1) * time.Hour), Views: int64(1000 - 50*i),
		})
	}
	// A big story six days old: the week's top, beyond the list's window.
	link := "https://gazette.example/s/politics-week"
	arts = append(arts, digest.Article{
		ID: digest.ArticleID("", link), Link: link, Title: "The week's big story", SummaryText: "Big.",
		Categories: []string{"Politics"}, Published: now.Add(-6 * 24 * time.Hour), Views: 5_000_000,
	})
	if _, _, err := f.store.UpsertArticles(arts); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) reader(t *testing.T, email string, edit func(*subscribers.Subscriber)) {
	t.Helper()
	sub := subscribers.Subscriber{Email: email, SendHour: -1, Frequency: subscribers.Daily}
	sub.SetStatus("daily", subscribers.Confirmed, now)
	if edit != nil {
		edit(&sub)
	}
	if err := f.store.AddSubscriber(sub); err != nil {
		t.Fatal(err)
	}
}

// stories returns the story slugs each recipient got from the messages
// received since from.
func (f *fixture) stories(t *testing.T, from int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range f.srv.Messages()[from:] {
		text, _ := bodies(t, m.Data)
		var got []string
		for _, s := range storyRe.FindAllStringSubmatch(text, -1) {
			if !slices.Contains(got, s[1]) {
				got = append(got, s[1])
			}
		}
		out[m.To[0]] = got
	}
	return out
}

func (f *fixture) send(t *testing.T, at time.Time) delivery.Result {
	t.Helper()
	f.engine.Clock = digest.FixedClock(at)
	ed, err := f.engine.Trigger("daily", false)
	if err != nil {
		t.Fatalf("trigger at %s: %v", at, err)
	}
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSecondManualTriggerIsRefusedUnlessForcedNew(t *testing.T) {
	f := contentFixture(t)
	f.reader(t, "ann@example.org", nil)
	f.send(t, now)

	// A minute later, the same period (the UTC date: the list has no
	// schedule): refused, nothing queued.
	f.engine.Clock = digest.FixedClock(now.Add(time.Minute))
	ed, err := f.engine.Trigger("daily", false)
	if !errors.Is(err, delivery.ErrEditionExists) {
		t.Fatalf("second trigger: %v, want ErrEditionExists", err)
	}
	t.Logf("refused: %v", err)
	if ed.ID != "daily-20261127-0000" {
		t.Errorf("refused edition %s, want the UTC date's", ed.ID)
	}
	// Forced: a new edition of the same slot.
	ed2, err := f.engine.Trigger("daily", true)
	if err != nil {
		t.Fatal(err)
	}
	if ed2.ID != "daily-20261127-0000-2" {
		t.Errorf("forced edition %s, want daily-20261127-0000-2", ed2.ID)
	}
	// A test copy never counts: it makes no edition.
	f.engine.Clock = digest.FixedClock(now.Add(24 * time.Hour))
	if _, err := f.engine.SendTest(context.Background(), "daily", "editor@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.GetEdition("daily-20261128-0000"); err == nil {
		t.Error("a test send recorded an edition")
	}
	if _, err := f.engine.Trigger("daily", false); err != nil {
		t.Errorf("next day's trigger after a test send: %v", err)
	}

	// A cron list: the period is from its latest slot.
	l, _ := f.store.GetList("daily")
	l.Schedule = "CRON_TZ=Europe/Paris 0 7 * * *"
	if err := f.store.PutList(l); err != nil {
		t.Fatal(err)
	}
	if got := delivery.ManualSlot(l, now.Add(48*time.Hour)).Format(time.RFC3339); got != "2026-11-29T06:00:00Z" {
		t.Errorf("manual slot of a cron list: %s, want 2026-11-29T06:00:00Z (07:00 Paris)", got)
	}
	if got := delivery.ManualSlot(l, now.Add(48*time.Hour-time.Hour-time.Minute)).Format(time.RFC3339); got != "2026-11-28T06:00:00Z" {
		t.Errorf("manual slot before the day's 07:00: %s, want the day before", got)
	}
}

func TestNeverRepeatAcrossThreeEditions(t *testing.T) {
	f := contentFixture(t)
	f.reader(t, "ann@example.org", nil)
	f.reader(t, "bob@example.org", nil)
	// A topic reader's stories are mostly not the list's own picks: only
	// their history keeps them from coming back.
	f.reader(t, "sport@example.org", func(s *subscribers.Subscriber) { s.Topics = []string{"Sport"} })
	sent := map[string][]string{}
	for day := range 3 {
		from := len(f.srv.Messages())
		res := f.send(t, now.Add(time.Duration(day)*24*time.Hour))
		got := f.stories(t, from)
		// Four sport stories in all: 3, then 1, then nothing (skipped).
		if wantSent := []int{3, 3, 2}[day]; res.Sent != wantSent {
			t.Fatalf("edition %d: %v, want %d sent", day+1, res, wantSent)
		}
		for who, ss := range got {
			if len(ss) != 3 && who != "sport@example.org" {
				t.Errorf("edition %d: %s got %d stories %v, want 3", day+1, who, len(ss), ss)
			}
			for _, s := range ss {
				if slices.Contains(sent[who], s) {
					t.Errorf("edition %d: %s got %s again", day+1, who, s)
				}
			}
			sent[who] = append(sent[who], ss...)
		}
	}
	// A newcomer on day 3 gets that day's best, including what the others
	// had: it is new to them.
	f.reader(t, "cat@example.org", nil)
	pv, err := f.engine.Preview("daily", "cat@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Empty || pv.Edition.Stories.Len() != 3 {
		t.Errorf("newcomer's preview: empty=%v %d stories (%s)", pv.Empty, pv.Edition.Stories.Len(), pv.Skip)
	}
}

func TestTopicsWeeklyAndNothingNewSkips(t *testing.T) {
	f := contentFixture(t)
	f.reader(t, "sport@example.org", func(s *subscribers.Subscriber) { s.Topics = []string{"sport"} })
	f.reader(t, "all@example.org", nil)
	// 2026-11-27 is a Friday.
	f.reader(t, "weekly@example.org", func(s *subscribers.Subscriber) {
		s.Frequency = subscribers.Weekly
		s.Attrs = map[string]string{"weekday": "Fri"}
	})
	f.reader(t, "monday@example.org", func(s *subscribers.Subscriber) { s.Frequency = subscribers.Weekly })
	f.reader(t, "chess@example.org", func(s *subscribers.Subscriber) { s.Topics = []string{"Chess"} })

	// Preview --as shows exactly each one's copy.
	pv, err := f.engine.Preview("daily", "sport@example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pv.Edition.Stories.Picks() {
		if p.Article.Categories[0] != "Sport" {
			t.Errorf("sport reader's preview has %q (%v)", p.Article.Title, p.Article.Categories)
		}
	}
	t.Logf("preview as %s", pv.Reader)

	res := f.send(t, now)
	got := f.stories(t, 0)
	if res.Sent != 3 || res.Skipped != 2 {
		t.Errorf("result %v: want 3 sent (sport, all, weekly) and 2 skipped (monday, chess)", res)
	}
	for _, s := range got["sport@example.org"] {
		if s[:5] != "sport" {
			t.Errorf("sport reader got %s", s)
		}
	}
	if len(got["sport@example.org"]) == 0 {
		t.Error("sport reader got nothing")
	}
	if !slices.Contains(got["weekly@example.org"], "politics-week") {
		t.Errorf("weekly reader got %v, want the week's top story politics-week", got["weekly@example.org"])
	}
	if slices.Contains(got["all@example.org"], "politics-week") {
		t.Errorf("daily reader got the six-day-old story: %v", got["all@example.org"])
	}
	ds, err := f.store.Deliveries(digest.EditionID("daily", time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		switch d.Email {
		case "monday@example.org", "chess@example.org":
			if d.Status != digest.DeliverySkipped || d.Reply == "" {
				t.Errorf("%s: %s %q, want skipped with the reason", d.Email, d.Status, d.Reply)
			}
			t.Logf("%s skipped: %s", d.Email, d.Reply)
		}
	}
	if _, ok := got["monday@example.org"]; ok {
		t.Error("the Monday weekly reader got a message on a Friday")
	}
}

// TestVariantsRenderOncePerDistinctCopy extends the render-once proof:
// premailer runs once per distinct set of stories, not per recipient.
func TestVariantsRenderOncePerDistinctCopy(t *testing.T) {
	f := contentFixture(t)
	for i := range 30 {
		f.reader(t, fmt.Sprintf("plain%02d@example.org", i), nil)
	}
	for i := range 20 {
		f.reader(t, fmt.Sprintf("sport%02d@example.org", i), func(s *subscribers.Subscriber) { s.Topics = []string{"SPORT"} })
	}
	f.engine.Clock = digest.FixedClock(now)
	ed, err := f.engine.Trigger("daily", false)
	if err != nil {
		t.Fatal(err)
	}
	before := f.engine.Renderer.Inlines()
	res, err := f.engine.Deliver(context.Background(), ed.ID)
	if err != nil || res.Sent != 50 {
		t.Fatalf("%v %v", res, err)
	}
	// Two variants (everything; sport only): the edition's own stories
	// rendered up front, plus the sport variant.
	if n := f.engine.Renderer.Inlines() - before; n != 2 {
		t.Errorf("premailer ran %d times for 50 recipients of 2 variants, want 2", n)
	}
	got := f.stories(t, 0)
	if !slices.Equal(got["plain00@example.org"], got["plain29@example.org"]) || !slices.Equal(got["sport00@example.org"], got["sport19@example.org"]) ||
		slices.Equal(got["plain00@example.org"], got["sport00@example.org"]) {
		t.Errorf("variants: plain %v / %v, sport %v / %v", got["plain00@example.org"], got["plain29@example.org"], got["sport00@example.org"], got["sport19@example.org"])
	}
}
