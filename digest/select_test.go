package digest

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)

func art(id string, ageHours float64, views int64, cats ...string) Article {
	return Article{ID: id, Title: "Story " + id, Link: "https://example.org/" + id,
		Published: now.Add(-time.Duration(ageHours * float64(time.Hour))), Views: views, Categories: cats}
}

func ids(ps []Pick) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Article.ID
	}
	return out
}

func TestScore(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Article
		want float64
	}{
		{"Fresh", art("a", 0, 99), 100 / math.Pow(2, 1.5)},
		{"TenHours", art("a", 10, 99), 100 / math.Pow(12, 1.5)},
		{"ClicksWeighTen", Article{Published: now, Views: 0, Clicks: 3}, 31 / math.Pow(2, 1.5)},
		{"Boost", Article{Published: now, Views: 99, Boost: 2}, 200 / math.Pow(2, 1.5)},
		{"FutureCountsAsNew", Article{Published: now.Add(30 * time.Minute), Views: 99}, 100 / math.Pow(2, 1.5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Score(tc.a, now, DefaultGravity); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// Decay: the same readership is worth less with age, so an old story
	// needs more readers to stay ahead of a new one.
	if Score(art("old", 20, 1000), now, DefaultGravity) >= Score(art("new", 1, 200), now, DefaultGravity) {
		t.Error("a 20-hour-old story with 1000 views outranks a 1-hour-old one with 200")
	}
}

func TestSelect(t *testing.T) {
	pool := []Article{
		art("popular-old", 30, 5000, "Politics"),
		art("popular-new", 2, 3000, "Politics"),
		art("quiet-new", 0.5, 10, "Sport"),
		art("mid", 5, 800, "Business"),
		art("stale", 72, 100000, "Politics"), // outside the 48 h window
		art("politics-3", 3, 900, "Politics"),
		art("culture", 8, 50, "Culture"),
	}
	t.Run("TopThenRecent", func(t *testing.T) {
		sel := Select(pool, Policy{TopCount: 3, RecentCount: 2}, now, nil)
		if got, want := ids(sel.Top), []string{"popular-new", "politics-3", "mid"}; !slices.Equal(got, want) {
			t.Errorf("top %v, want %v", got, want)
		}
		if got, want := ids(sel.Recent), []string{"quiet-new", "culture"}; !slices.Equal(got, want) {
			t.Errorf("recent %v, want %v (newest not in top)", got, want)
		}
		for _, p := range sel.Picks() {
			if p.Reason == "" || p.Age < 0 {
				t.Errorf("pick %s has no reason or a negative age: %+v", p.Article.ID, p)
			}
		}
		if !strings.Contains(sel.Top[0].Reason, "3000 views") {
			t.Errorf("reason %q does not explain the score", sel.Top[0].Reason)
		}
	})
	t.Run("WindowExcludesStale", func(t *testing.T) {
		sel := Select(pool, Policy{TopCount: 10, RecentCount: 10}, now, nil)
		for _, p := range sel.Picks() {
			if p.Article.ID == "stale" {
				t.Error("a story outside the window was picked")
			}
		}
		if sel.Len() != 6 {
			t.Errorf("picked %d, want the 6 inside the window", sel.Len())
		}
	})
	t.Run("CategoryCap", func(t *testing.T) {
		sel := Select(pool, Policy{TopCount: 3, RecentCount: 1, CategoryCap: 1}, now, nil)
		if got, want := ids(sel.Top), []string{"popular-new", "mid", "quiet-new"}; !slices.Equal(got, want) {
			t.Errorf("top %v, want %v (one politics story at most)", got, want)
		}
	})
	t.Run("PinnedLeadsBoostCountsExcludedNever", func(t *testing.T) {
		p := slices.Clone(pool)
		p[2].Pinned = true   // quiet-new
		p[6].Boost = 100     // culture
		p[1].Excluded = true // popular-new
		sel := Select(p, Policy{TopCount: 3, RecentCount: 5}, now, nil)
		if got, want := ids(sel.Top), []string{"quiet-new", "culture", "politics-3"}; !slices.Equal(got, want) {
			t.Errorf("top %v, want %v", got, want)
		}
		if !strings.Contains(sel.Top[0].Reason, "pinned") || !strings.Contains(sel.Top[1].Reason, "boost") {
			t.Errorf("reasons %q, %q do not mention pin and boost", sel.Top[0].Reason, sel.Top[1].Reason)
		}
		for _, pk := range sel.Picks() {
			if pk.Article.ID == "popular-new" {
				t.Error("an excluded story was picked")
			}
		}
	})
	t.Run("SeenStoriesAreNotRepeated", func(t *testing.T) {
		seen := map[string]bool{"popular-new": true, "quiet-new": true}
		sel := Select(pool, Policy{TopCount: 2, RecentCount: 10}, now, func(id string) bool { return seen[id] })
		for _, p := range sel.Picks() {
			if seen[p.Article.ID] {
				t.Errorf("seen story %s picked again", p.Article.ID)
			}
		}
	})
	t.Run("InputOrderDoesNotMatter", func(t *testing.T) {
		a := Select(pool, Policy{TopCount: 3, RecentCount: 3}, now, nil)
		rev := slices.Clone(pool)
		slices.Reverse(rev)
		b := Select(rev, Policy{TopCount: 3, RecentCount: 3}, now, nil)
		if !slices.Equal(ids(a.Picks()), ids(b.Picks())) {
			t.Errorf("%v vs %v", ids(a.Picks()), ids(b.Picks()))
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if sel := Select(nil, Policy{}, now, nil); sel.Len() != 0 {
			t.Errorf("got %d picks from nothing", sel.Len())
		}
	})
}

func TestArticleIDAndMerge(t *testing.T) {
	if ArticleID("g1", "https://a") == ArticleID("", "https://a") || ArticleID("g1", "x") != ArticleID("g1", "y") {
		t.Error("ArticleID must come from the GUID when there is one, else the link")
	}
	stored := Article{ID: "x", Title: "Old", Views: 500, Pinned: true, Ingested: now.Add(-time.Hour), Source: "feed1"}
	in := Article{Title: "New title", Views: 300, SummaryText: "fresh"}
	got := stored.Merge(in)
	if got.ID != "x" || got.Title != "New title" || got.Views != 500 || !got.Pinned || !got.Ingested.Equal(stored.Ingested) || got.Source != "feed1" || got.SummaryText != "fresh" {
		t.Errorf("merge: %+v", got)
	}
}

func TestMergeKeepsTheFirstSeenDateOfAnUndatedStory(t *testing.T) {
	first := Article{ID: "x", Title: "No date", Published: now.Add(-5 * time.Hour), DateGuessed: true}
	again := Article{Title: "No date", Published: now, DateGuessed: true}
	if got := first.Merge(again); !got.Published.Equal(first.Published) {
		t.Errorf("published moved to %v on a later fetch, want %v", got.Published, first.Published)
	}
	dated := Article{Title: "Now dated", Published: now.Add(-2 * time.Hour)}
	if got := first.Merge(dated); !got.Published.Equal(dated.Published) || got.DateGuessed {
		t.Errorf("a real date did not replace the guessed one: %+v", got)
	}
}

func TestSelectionArticleIDsInPickOrder(t *testing.T) {
	s := Selection{
		Top:    []Pick{{Article: Article{ID: "t1"}}, {Article: Article{ID: "t2"}}},
		Recent: []Pick{{Article: Article{ID: "r1"}}},
	}
	got := s.ArticleIDs()
	var want []string
	for _, p := range s.Picks() {
		want = append(want, p.Article.ID)
	}
	if !slices.Equal(got, want) || len(got) != 3 {
		t.Errorf("ArticleIDs = %v, want %v", got, want)
	}
	if ids := (Selection{}).ArticleIDs(); len(ids) != 0 {
		t.Errorf("empty selection: %v", ids)
	}
}
