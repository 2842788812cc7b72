package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

// clickEdition stores an edition of daily with two stories, one of which
// has a link that must never be redirected to.
func clickEdition(t *testing.T, e *env) digest.Edition {
	t.Helper()
	arts := []digest.Article{
		{ID: "a1", Title: "Storm", Link: "https://news.example.org/storm?id=1", Published: e.clock.Now()},
		{ID: "a2", Title: "Bad", Link: "javascript:alert(1)", Published: e.clock.Now()},
	}
	if _, _, err := e.st.UpsertArticles(arts); err != nil {
		t.Fatal(err)
	}
	ed := digest.Edition{
		ID: "daily-20261127-0900", List: "daily", Slot: e.clock.Now(), Status: digest.EditionSent,
		Stories: digest.Selection{Top: []digest.Pick{{Article: arts[0]}}, Recent: []digest.Pick{{Article: arts[1]}}},
	}
	if _, err := e.st.CreateEdition(ed); err != nil {
		t.Fatal(err)
	}
	return ed
}

func clickPath(e *env, article, edition string) string {
	return "/c/" + e.signer.Sign(subscribers.PurposeClick, article, edition, time.Time{})
}

func TestClickRedirectsToStoredTargetAndCounts(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.Clicks = s.Store.(ClickRecorder) })
	ed := clickEdition(t, e)
	path := clickPath(e, "a1", ed.ID)

	// A link scanner's HEAD: the redirect, not counted.
	if r := e.do("HEAD", path, nil); r.status != http.StatusFound {
		t.Fatalf("HEAD: %d", r.status)
	}
	for i := 0; i < 2; i++ {
		// Whatever the request carries, the target is the stored one.
		r := e.get(path+"?url=https://evil.example/&next=//evil.example", "Referer", "https://evil.example/")
		if r.status != http.StatusFound || r.header.Get("Location") != "https://news.example.org/storm?id=1" {
			t.Fatalf("click %d: %d, Location %q", i+1, r.status, r.header.Get("Location"))
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
		}
	}
	clicks, err := e.st.EditionClicks(ed.ID)
	if err != nil || clicks["a1"] != 2 || len(clicks) != 1 {
		t.Fatalf("edition clicks %v, %v; want a1: 2", clicks, err)
	}
	a, _ := e.st.GetArticle("a1")
	if a.Clicks != 2 {
		t.Fatalf("article clicks %d, want 2", a.Clicks)
	}
	if got := digest.Score(a, a.Published, 1.5); got <= digest.Score(digest.Article{Published: a.Published}, a.Published, 1.5) {
		t.Fatalf("clicks did not raise the score: %g", got)
	}
}

func TestClickBadLinks(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.Clicks = s.Store.(ClickRecorder) })
	ed := clickEdition(t, e)
	good := clickPath(e, "a1", ed.ID)
	other, _ := subscribers.NewSigner([]byte("another secret of at least 32 bytes!!"))
	tampered := []byte(good)
	tampered[len("/c/")+5] ^= 1 // a bit of the payload
	cases := map[string]string{
		"forged":            "/c/" + other.Sign(subscribers.PurposeClick, "a1", ed.ID, time.Time{}),
		"tampered":          string(tampered),
		"truncated":         good[:len(good)-3],
		"other purpose":     "/c/" + e.signer.Sign(subscribers.PurposeUnsubscribe, "a1", ed.ID, time.Time{}),
		"unknown edition":   clickPath(e, "a1", "daily-20990101-0000"),
		"story not in it":   clickPath(e, "zz", ed.ID),
		"stored javascript": clickPath(e, "a2", ed.ID),
		"garbage":           "/c/" + strings.Repeat("A", 5000),
		"empty ids":         clickPath(e, "", ""),
	}
	for name, path := range cases {
		r := e.get(path)
		if r.status != http.StatusBadRequest || r.header.Get("Location") != "" || !strings.Contains(r.body, "This link does not work") {
			t.Errorf("%s: %d, Location %q", name, r.status, r.header.Get("Location"))
		}
	}
	if clicks, _ := e.st.EditionClicks(ed.ID); len(clicks) != 0 {
		t.Fatalf("bad links were counted: %v", clicks)
	}
}

func TestClickNotCountedWhenTrackingOff(t *testing.T) {
	e := newEnv(t) // Clicks nil: links of older emails still work
	ed := clickEdition(t, e)
	r := e.get(clickPath(e, "a1", ed.ID))
	if r.status != http.StatusFound || r.header.Get("Location") != "https://news.example.org/storm?id=1" {
		t.Fatalf("%d, Location %q", r.status, r.header.Get("Location"))
	}
	if clicks, _ := e.st.EditionClicks(ed.ID); len(clicks) != 0 {
		t.Fatalf("counted with tracking off: %v", clicks)
	}
}
