package boltstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
)

func TestCanonicalLink(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://example.org/a/b", "https://example.org/a/b"},
		{"HTTPS://Example.ORG/Path/", "https://example.org/Path"},
		{"https://example.org/a/?utm_source=rss&utm_medium=feed", "https://example.org/a"},
		{"https://example.org/a?id=3&UTM_Campaign=x&fbclid=abc&gclid=def&page=2", "https://example.org/a?id=3&page=2"},
		{"https://example.org/a#comments", "https://example.org/a"},
		{"https://example.org", "https://example.org/"},
		{"https://example.org/", "https://example.org/"},
		{"https://example.org:443/a", "https://example.org/a"},
		{"http://example.org:80/a", "http://example.org/a"},
		{"http://example.org:8080/a", "http://example.org:8080/a"},
		{"https://example.org/a%2Fb/", "https://example.org/a%2Fb"},
		{"  https://example.org/a  ", "https://example.org/a"},
		{"/relative/path/", "/relative/path/"},
		{"not a url", "not a url"},
	} {
		if got := CanonicalLink(tc.in); got != tc.want {
			t.Errorf("CanonicalLink(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestUpsertArticles(t *testing.T) {
	pub := t0.Add(-2 * time.Hour)

	t.Run("NewSetsIDAndIngested", func(t *testing.T) {
		s, _ := mustOpen(t)
		added, merged, err := s.UpsertArticles([]digest.Article{
			{GUID: "g1", Link: "https://example.org/one", Title: "One", Published: pub},
			{Link: "https://example.org/two", Title: "Two", Published: pub},
		})
		if err != nil {
			t.Fatal(err)
		}
		if added != 2 || merged != 0 {
			t.Errorf("added, merged = %d, %d; want 2, 0", added, merged)
		}
		a, err := s.GetArticle(digest.ArticleID("g1", ""))
		if err != nil {
			t.Fatal(err)
		}
		if a.Title != "One" || !a.Ingested.Equal(t0) {
			t.Errorf("Title, Ingested = %q, %v; want One, %v", a.Title, a.Ingested, t0)
		}
		if _, err := s.GetArticle(digest.ArticleID("", "https://example.org/two")); err != nil {
			t.Errorf("article without GUID: %v", err)
		}
	})

	t.Run("DedupByGUID", func(t *testing.T) {
		s, clock := mustOpen(t)
		s.UpsertArticles([]digest.Article{{GUID: "g1", Link: "https://example.org/one", Title: "One", Published: pub, Views: 50}})
		id := digest.ArticleID("g1", "")
		if _, err := s.UpdateArticle(id, func(a *digest.Article) error { a.Pinned = true; return nil }); err != nil {
			t.Fatal(err)
		}
		clock.Set(t0.Add(time.Hour))
		added, merged, err := s.UpsertArticles([]digest.Article{
			{GUID: "g1", Link: "https://example.org/one-renamed", Title: "One (updated)", Views: 10},
		})
		if err != nil {
			t.Fatal(err)
		}
		if added != 0 || merged != 1 {
			t.Errorf("added, merged = %d, %d; want 0, 1", added, merged)
		}
		all, _ := s.Articles(time.Time{})
		if len(all) != 1 {
			t.Fatalf("%d articles stored, want 1", len(all))
		}
		a := all[0]
		if a.ID != id || a.Title != "One (updated)" || !a.Pinned || a.Views != 50 || !a.Ingested.Equal(t0) || !a.Published.Equal(pub) {
			t.Errorf("merged article = %+v; want new title, pinned kept, views 50, first Ingested and Published kept", a)
		}
	})

	t.Run("DedupByCanonicalLink", func(t *testing.T) {
		s, _ := mustOpen(t)
		s.UpsertArticles([]digest.Article{{GUID: "cms-17", Link: "https://example.org/story/", Title: "Story", Published: pub}})
		id := digest.ArticleID("cms-17", "")
		for i, link := range []string{
			"https://example.org/story?utm_source=twitter&utm_medium=social",
			"https://EXAMPLE.org/story#top",
			"https://example.org/story",
			"https://example.org/story/?fbclid=XYZ",
		} {
			// A different feed: another GUID (or none), the same story.
			in := digest.Article{Link: link, Title: fmt.Sprintf("Story v%d", i)}
			if i%2 == 0 {
				in.GUID = fmt.Sprintf("other-feed-%d", i)
			}
			added, merged, err := s.UpsertArticles([]digest.Article{in})
			if err != nil {
				t.Fatal(err)
			}
			if added != 0 || merged != 1 {
				t.Errorf("%s: added, merged = %d, %d; want 0, 1", link, added, merged)
			}
		}
		all, _ := s.Articles(time.Time{})
		if len(all) != 1 || all[0].ID != id {
			t.Fatalf("articles = %+v, want only %s", all, id)
		}
		if got, want := all[0].Title, "Story v3"; got != want {
			t.Errorf("Title = %q, want %q", got, want)
		}
		// A GUID merged in through the link is recognized later, even
		// with another link.
		_, merged, _ := s.UpsertArticles([]digest.Article{{GUID: "other-feed-0", Link: "https://mirror.example.net/x"}})
		if merged != 1 {
			t.Errorf("known GUID under a new link: merged = %d, want 1", merged)
		}
		// A different path is a different story.
		added, _, _ := s.UpsertArticles([]digest.Article{{Link: "https://example.org/story-2"}})
		if added != 1 {
			t.Errorf("different story: added = %d, want 1", added)
		}
	})

	t.Run("DedupWithinBatch", func(t *testing.T) {
		s, _ := mustOpen(t)
		added, merged, err := s.UpsertArticles([]digest.Article{
			{Link: "https://example.org/a?utm_source=x", Title: "A"},
			{Link: "https://example.org/a", Title: "A again"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if added != 1 || merged != 1 {
			t.Errorf("added, merged = %d, %d; want 1, 1", added, merged)
		}
	})

	t.Run("HugeLinkAndGUID", func(t *testing.T) {
		s, _ := mustOpen(t)
		huge := "https://example.org/" + strings.Repeat("x", 100_000)
		a := digest.Article{GUID: strings.Repeat("g", 50_000), Link: huge, Title: "Huge"}
		if _, _, err := s.UpsertArticles([]digest.Article{a}); err != nil {
			t.Fatalf("hostile sizes: %v", err)
		}
		a.ID = ""
		a.GUID = ""
		_, merged, err := s.UpsertArticles([]digest.Article{a})
		if err != nil || merged != 1 {
			t.Errorf("huge link again: merged = %d, %v; want 1, nil", merged, err)
		}
	})

	t.Run("ErrNoIdentity", func(t *testing.T) {
		s, _ := mustOpen(t)
		_, _, err := s.UpsertArticles([]digest.Article{{Link: "https://example.org/ok"}, {Title: "nothing to key on"}})
		if err == nil {
			t.Fatal("article without id, guid or link accepted")
		}
		if all, _ := s.Articles(time.Time{}); len(all) != 0 {
			t.Errorf("failed batch stored %d articles", len(all))
		}
	})
}

func TestGetArticle(t *testing.T) {
	s, _ := mustOpen(t)
	_, _, err := s.UpsertArticles([]digest.Article{
		{ID: "abcd1111", Link: "https://example.org/1"},
		{ID: "abcd2222", Link: "https://example.org/2"},
		{ID: "ef001234", Link: "https://example.org/3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arg, want string
		err       error
	}{
		{"abcd1111", "abcd1111", nil},
		{"abcd1", "abcd1111", nil},
		{"ef00", "ef001234", nil},
		{"abcd", "", ErrAmbiguous},
		{"ef0", "", ErrNotFound}, // too short for a prefix
		{"9999", "", ErrNotFound},
		{"", "", ErrNotFound},
	} {
		a, err := s.GetArticle(tc.arg)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("GetArticle(%q) = %v, want %v", tc.arg, err, tc.err)
			}
			continue
		}
		if err != nil || a.ID != tc.want {
			t.Errorf("GetArticle(%q) = %q, %v; want %q", tc.arg, a.ID, err, tc.want)
		}
	}
	_, err = s.GetArticle("abcd")
	if msg := err.Error(); !strings.Contains(msg, "abcd1111") || !strings.Contains(msg, "abcd2222") {
		t.Errorf("ambiguous error = %q, want it to list the matches", msg)
	}
}

func TestArticlesSince(t *testing.T) {
	s, _ := mustOpen(t)
	s.UpsertArticles([]digest.Article{
		{ID: "old", Link: "https://example.org/old", Published: t0.Add(-72 * time.Hour)},
		{ID: "mid", Link: "https://example.org/mid", Published: t0.Add(-24 * time.Hour)},
		{ID: "new", Link: "https://example.org/new", Published: t0.Add(-1 * time.Hour)},
	})
	ids := func(as []digest.Article) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	all, _ := s.Articles(time.Time{})
	if got, want := ids(all), []string{"new", "mid", "old"}; !equalStrings(got, want) {
		t.Errorf("Articles(zero) = %v, want %v", got, want)
	}
	recent, _ := s.Articles(t0.Add(-24 * time.Hour))
	if got, want := ids(recent), []string{"new", "mid"}; !equalStrings(got, want) {
		t.Errorf("Articles(since 24h, inclusive) = %v, want %v", got, want)
	}
}

func TestUpdateArticle(t *testing.T) {
	s, _ := mustOpen(t)
	s.UpsertArticles([]digest.Article{{ID: "abcd1111", Link: "https://example.org/1", Title: "T"}})
	got, err := s.UpdateArticle("abcd", func(a *digest.Article) error { a.Boost = 2; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Boost != 2 {
		t.Errorf("returned Boost = %v, want 2", got.Boost)
	}
	stored, _ := s.GetArticle("abcd1111")
	if stored.Boost != 2 {
		t.Errorf("stored Boost = %v, want 2", stored.Boost)
	}

	boom := errors.New("boom")
	if _, err := s.UpdateArticle("abcd1111", func(a *digest.Article) error { a.Title = "X"; return boom }); !errors.Is(err, boom) {
		t.Errorf("fn error = %v, want boom", err)
	}
	if _, err := s.UpdateArticle("abcd1111", func(a *digest.Article) error { a.ID = "other"; return nil }); err == nil {
		t.Error("changing the ID succeeded")
	}
	if stored, _ := s.GetArticle("abcd1111"); stored.Title != "T" {
		t.Errorf("failed updates were written: Title = %q", stored.Title)
	}
	if _, err := s.UpdateArticle("zzzz", func(*digest.Article) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateArticle(missing) = %v, want ErrNotFound", err)
	}
}

func TestSetViews(t *testing.T) {
	s, _ := mustOpen(t)
	s.UpsertArticles([]digest.Article{
		{GUID: "cms-1", Link: "https://example.org/1"},
		{Link: "https://example.org/2"},
	})
	id2 := digest.ArticleID("", "https://example.org/2")
	updated, missing, err := s.SetViews(map[string]int64{"cms-1": 120, id2: 7, "cms-404": 3})
	if err != nil {
		t.Fatal(err)
	}
	if updated != 2 {
		t.Errorf("updated = %d, want 2", updated)
	}
	if got, want := missing, []string{"cms-404"}; !equalStrings(got, want) {
		t.Errorf("missing = %v, want %v", got, want)
	}
	a1, _ := s.GetArticle(digest.ArticleID("cms-1", ""))
	a2, _ := s.GetArticle(id2)
	if a1.Views != 120 || a2.Views != 7 {
		t.Errorf("views = %d, %d; want 120, 7", a1.Views, a2.Views)
	}
	if _, _, err := s.SetViews(map[string]int64{"cms-1": -1}); err == nil {
		t.Error("negative views accepted")
	}
}
