package feed

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
)

// rowReasons maps each RowError's line to its reason.
func rowReasons(bad []RowError) map[int]string {
	m := make(map[int]string)
	for _, b := range bad {
		m[b.Line] = b.Reason
	}
	return m
}

func checkRows(t *testing.T, bad []RowError, want map[int]string) {
	t.Helper()
	got := rowReasons(bad)
	if len(got) != len(want) {
		t.Errorf("bad rows %v, want lines %v", bad, want)
	}
	for line, w := range want {
		if r, ok := got[line]; !ok || !strings.Contains(r, w) {
			t.Errorf("line %d: reason %q, want one containing %q", line, r, w)
		}
	}
}

func TestReadArticlesJSON(t *testing.T) {
	f, err := os.Open("testdata/articles.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	arts, bad, err := ReadArticlesJSON(f, testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, bad, map[int]string{
		2:  `scheme "javascript" not allowed`,
		3:  "not an RFC 3339 time",
		4:  "negative",
		5:  "invalid number",
		6:  "no title",
		9:  "want an object",
		10: "categories",
	})
	if got, want := len(arts), 3; got != want {
		t.Fatalf("imported %d articles, want %d: %+v", got, want, arts)
	}

	t.Run("Full", func(t *testing.T) {
		a := arts[0]
		for _, p := range articleProblems(a) {
			t.Error(p)
		}
		want := digest.Article{
			ID:          digest.ArticleID("cms-1", "https://paper.example/a/1"),
			GUID:        "cms-1",
			Link:        "https://paper.example/a/1",
			Title:       "Budget passes after debate",
			SummaryHTML: "<p>The budget passed.</p>",
			SummaryText: "The budget passed.",
			ImageURL:    "https://paper.example/i/1.jpg",
			Author:      "Jo Bloggs",
			Categories:  []string{"Politics", "Money"},
			Published:   time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC),
			Ingested:    testNow,
			Views:       1500,
		}
		if !reflect.DeepEqual(a, want) {
			t.Errorf("got  %+v\nwant %+v", a, want)
		}
	})
	t.Run("PopularityUpdate", func(t *testing.T) {
		a := arts[1]
		want := digest.Article{ID: digest.ArticleID("cms-7", ""), GUID: "cms-7", Views: 98765}
		if !reflect.DeepEqual(a, want) || !IsPopularityUpdate(a) {
			t.Errorf("got %+v, want %+v", a, want)
		}
		// Merged into the stored article, it raises the views and keeps the rest.
		stored := digest.Article{ID: a.ID, GUID: "cms-7", Link: "https://paper.example/a/7", Title: "Stored", Views: 10, Ingested: testNow.Add(-time.Hour)}
		merged := stored.Merge(a)
		if merged.Views != 98765 || merged.Title != "Stored" || merged.Link != stored.Link || !merged.Ingested.Equal(stored.Ingested) {
			t.Errorf("merged = %+v", merged)
		}
	})
	t.Run("NoDateNoGUIDHTTPImage", func(t *testing.T) {
		a := arts[2]
		if !a.Published.Equal(testNow) || a.GUID != "" || a.ImageURL != "" || IsPopularityUpdate(a) {
			t.Errorf("got %+v; want Published = now, no GUID, no image", a)
		}
		if got, want := a.ID, digest.ArticleID("", "https://paper.example/a/8"); got != want {
			t.Errorf("ID = %q, want %q", got, want)
		}
	})

	t.Run("NotAnArray", func(t *testing.T) {
		for _, in := range []string{`{"guid": "x"}`, ``, `"text"`} {
			if _, _, err := ReadArticlesJSON(strings.NewReader(in), testNow); err == nil || !strings.HasPrefix(err.Error(), "feed: articles JSON") {
				t.Errorf("%q: err = %v, want a feed: articles JSON error", in, err)
			}
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		arts, _, err := ReadArticlesJSON(strings.NewReader(`[{"guid":"a","views":1},{"guid":`), testNow)
		if err == nil || !strings.Contains(err.Error(), "entry 2") {
			t.Errorf("err = %v, want one naming entry 2", err)
		}
		if len(arts) != 1 {
			t.Errorf("got %d articles before the error, want 1", len(arts))
		}
	})
	t.Run("PopularityUpdateNeedsViews", func(t *testing.T) {
		_, bad, err := ReadArticlesJSON(strings.NewReader(`[{"guid":"a"}]`), testNow)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, bad, map[int]string{1: "no views"})
	})
}

func TestReadArticlesCSV(t *testing.T) {
	f, err := os.Open("testdata/articles.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	arts, bad, err := ReadArticlesCSV(f, testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, bad, map[int]string{
		3: `scheme "javascript" not allowed`,
		4: "not an RFC 3339 time",
		5: "negative",
		6: "not a whole number",
		7: "no title",
	})
	var guids []string
	for _, a := range arts {
		guids = append(guids, a.GUID)
		if !IsPopularityUpdate(a) {
			for _, p := range articleProblems(a) {
				t.Errorf("%s: %s", a.GUID, p)
			}
		}
	}
	if want := []string{"cms-1", "cms-7", "cms-8", "cms-9"}; !reflect.DeepEqual(guids, want) {
		t.Fatalf("imported %q, want %q", guids, want)
	}
	a := arts[0]
	if got, want := a.SummaryHTML, "<p>The budget <b>passed</b>.</p>"; got != want {
		t.Errorf("SummaryHTML = %q, want %q", got, want)
	}
	if got, want := a.Categories, []string{"Politics", "Money"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Categories = %q, want %q", got, want)
	}
	if a.Views != 1500 {
		t.Errorf("Views = %d, want 1500", a.Views)
	}
	if got, want := arts[1], (digest.Article{ID: digest.ArticleID("cms-7", ""), GUID: "cms-7", Views: 98765}); !reflect.DeepEqual(got, want) {
		t.Errorf("popularity update = %+v, want %+v", got, want)
	}
	if got, want := arts[2].Title, "Multi-line title"; got != want {
		t.Errorf("multi-line title = %q, want %q", got, want)
	}
	if got, want := arts[2].Published, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Published = %v, want %v", got, want)
	}

	t.Run("Header", func(t *testing.T) {
		tests := []struct {
			name, in, want string
		}{
			{"Empty", "", "empty file"},
			{"NoTitle", "guid,link,summary\n", "title"},
			{"NoLinkOrGUID", "title,summary\n", "link or guid"},
			{"Neither", "summary\n", "link or guid and title"},
			{"Duplicate", "guid,title,Title\n", `"title" appears twice`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := ReadArticlesCSV(strings.NewReader(tt.in), testNow)
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "feed: articles CSV") {
					t.Errorf("err = %v, want one containing %q", err, tt.want)
				}
			})
		}
	})
	t.Run("PopularityFile", func(t *testing.T) {
		in := "\uFEFFGUID,Views\nhg-1,120\nhg-2,-1\nhg-3,9\n"
		arts, bad, err := ReadArticlesCSV(strings.NewReader(in), testNow)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, bad, map[int]string{3: "negative"})
		if len(arts) != 2 || arts[0].GUID != "hg-1" || arts[0].Views != 120 || !IsPopularityUpdate(arts[1]) {
			t.Errorf("got %+v", arts)
		}
	})
	t.Run("BadQuoteAndShortRows", func(t *testing.T) {
		in := "link,title\nhttps://a.example/1,\"broken \"quote\"\nhttps://a.example/2,Fine\nhttps://a.example/3\n"
		arts, bad, err := ReadArticlesCSV(strings.NewReader(in), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(arts) != 1 || arts[0].Title != "Fine" {
			t.Errorf("imported %+v, want only Fine", arts)
		}
		checkRows(t, bad, map[int]string{2: "quote", 4: "no title"})
	})
}
