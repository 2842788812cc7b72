package feed

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"newsdigest/digest"
)

var testNow = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

// parseFile parses a fixture and checks every returned article against the
// package invariants.
func parseFile(t *testing.T, path, base string) Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Parse(f, base, testNow)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	checkAll(t, res.Articles)
	return res
}

func checkAll(t *testing.T, arts []digest.Article) {
	t.Helper()
	for _, a := range arts {
		for _, p := range articleProblems(a) {
			t.Errorf("article %q: %s", a.Title, p)
		}
		if !a.Ingested.Equal(testNow) {
			t.Errorf("article %q: Ingested = %v, want %v", a.Title, a.Ingested, testNow)
		}
		if a.Source != "" {
			t.Errorf("article %q: Source = %q, want empty", a.Title, a.Source)
		}
	}
}

func byGUID(arts []digest.Article) map[string]digest.Article {
	m := make(map[string]digest.Article)
	for _, a := range arts {
		m[a.GUID] = a
	}
	return m
}

func TestParseRSS2(t *testing.T) {
	res := parseFile(t, "testdata/rss2.xml", "")
	if got, want := res.Title, "Northwind & Co. Newsroom"; got != want {
		t.Errorf("Title = %q, want %q", got, want)
	}
	if got, want := len(res.Articles), 3; got != want {
		t.Fatalf("got %d articles, want %d (skipped: %v)", got, want, res.Skipped)
	}
	arts := byGUID(res.Articles)

	t.Run("DescriptionMediaContentDCCreator", func(t *testing.T) {
		a := arts["nw-1001"]
		if got, want := a.Link, "https://news.northwind.example/2026/11/tram-line"; got != want {
			t.Errorf("Link = %q, want %q", got, want)
		}
		if got, want := a.ID, digest.ArticleID("nw-1001", a.Link); got != want {
			t.Errorf("ID = %q, want %q", got, want)
		}
		if got, want := a.Author, "Aisha Patel"; got != want {
			t.Errorf("Author = %q, want %q", got, want)
		}
		if got, want := a.Categories, []string{"Local", "Transport"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Categories = %q, want %q", got, want)
		}
		if got, want := a.ImageURL, "https://cdn.northwind.example/img/tram.jpg"; got != want {
			t.Errorf("ImageURL = %q, want %q", got, want)
		}
		if got, want := a.Published, time.Date(2026, 11, 26, 8, 30, 0, 0, time.UTC); !got.Equal(want) {
			t.Errorf("Published = %v, want %v", got, want)
		}
		if strings.Contains(a.SummaryHTML, "Full text") {
			t.Errorf("SummaryHTML %q took content:encoded over the description", a.SummaryHTML)
		}
		wantHTML := `<p>The council voted <strong>31 to 9</strong> in favour of the tram line.</p>` +
			`<p>Read the <a href="https://news.northwind.example/docs/tram.pdf" rel="noopener noreferrer">full report</a>.</p>`
		if got := a.SummaryHTML; got != wantHTML {
			t.Errorf("SummaryHTML =\n%s\nwant\n%s", got, wantHTML)
		}
		if got, want := a.SummaryText, "The council voted 31 to 9 in favour of the tram line. Read the full report."; got != want {
			t.Errorf("SummaryText = %q, want %q", got, want)
		}
	})
	t.Run("ContentEncodedEnclosure", func(t *testing.T) {
		a := arts["https://news.northwind.example/?p=1002"]
		if got, want := a.SummaryText, "Back in business After eight months of repairs the market is open again."; got != want {
			t.Errorf("SummaryText = %q, want %q", got, want)
		}
		if strings.Contains(a.SummaryHTML, "<img") || strings.Contains(a.SummaryHTML, "<h2") {
			t.Errorf("SummaryHTML %q keeps img or h2", a.SummaryHTML)
		}
		if got, want := a.ImageURL, "https://cdn.northwind.example/img/market.jpg"; got != want {
			t.Errorf("ImageURL = %q, want %q", got, want)
		}
		if got, want := a.Author, "Tom O'Neill"; got != want {
			t.Errorf("Author = %q, want %q", got, want)
		}
	})
	t.Run("AuthorEmailHTTPThumbnailSkipped", func(t *testing.T) {
		a := arts["nw-1003"]
		if got, want := a.Author, "Lena Berg"; got != want {
			t.Errorf("Author = %q, want %q", got, want)
		}
		if got, want := a.ImageURL, "https://cdn.northwind.example/img/podcast.png"; got != want {
			t.Errorf("ImageURL = %q, want %q (the audio enclosure and the http thumbnail must not be used)", got, want)
		}
		if got, want := a.Published, time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Published = %v, want %v in UTC", got, want)
		}
		if got, want := a.SummaryText, "Our weekly round-up — in audio."; got != want {
			t.Errorf("SummaryText = %q, want %q", got, want)
		}
	})
}

func TestParseAtom(t *testing.T) {
	res := parseFile(t, "testdata/atom.xml", "https://science.valley.example/atom.xml")
	if got, want := len(res.Articles), 2; got != want {
		t.Fatalf("got %d articles, want %d (skipped: %v)", got, want, res.Skipped)
	}
	a := res.Articles[0]
	if got, want := a.Title, "Comet C/2026 A1 brightens"; got != want {
		t.Errorf("Title = %q, want %q", got, want)
	}
	if got, want := a.SummaryHTML, "<p>Visible with binoculars before dawn.</p>"; got != want {
		t.Errorf("SummaryHTML = %q, want %q", got, want)
	}
	if got, want := a.Author, "Dr. Mei Tanaka"; got != want {
		t.Errorf("Author = %q, want %q", got, want)
	}
	if got, want := a.Published, time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Published = %v, want %v", got, want)
	}
	b := res.Articles[1]
	if got, want := b.Published, time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("entry with only <updated>: Published = %v, want %v", got, want)
	}
	if got, want := b.SummaryText, "XHTML content only."; got != want {
		t.Errorf("xhtml content: SummaryText = %q, want %q", got, want)
	}
	if len(res.Notes) != 0 {
		t.Errorf("Notes = %v, want none", res.Notes)
	}
}

func TestParseJSONFeed(t *testing.T) {
	res := parseFile(t, "testdata/jsonfeed.json", "")
	if got, want := res.Title, "Coastline Weekly"; got != want {
		t.Errorf("Title = %q, want %q", got, want)
	}
	arts := byGUID(res.Articles)
	a, ok := arts["cw-77"]
	if !ok {
		t.Fatalf("cw-77 missing; got %v", res.Articles)
	}
	if got, want := a.Categories, []string{"Sport", "Weather"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Categories = %q, want %q", got, want)
	}
	if got, want := a.ImageURL, "https://coastline.example/img/swell.jpg"; got != want {
		t.Errorf("ImageURL = %q, want %q", got, want)
	}
	if got, want := a.Author, "Kai Moana"; got != want {
		t.Errorf("Author = %q, want %q", got, want)
	}
	b := arts["cw-78"]
	if got, want := b.ImageURL, "https://coastline.example/img/lighthouse.webp"; got != want {
		t.Errorf("attachment image: ImageURL = %q, want %q", got, want)
	}
	if got, want := b.SummaryText, "The 1890 lighthouse shines again."; got != want {
		t.Errorf("content_text: SummaryText = %q, want %q", got, want)
	}
	if got, want := b.Published, time.Date(2026, 11, 25, 15, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("date_modified only: Published = %v, want %v", got, want)
	}
}

func TestParseLegacyCharsets(t *testing.T) {
	tests := []struct {
		file, feedTitle string
		titles          []string
	}{
		{"testdata/latin1.xml", "Le Journal de Genève", []string{"Élection municipale : résultats à Genève", "Crème brûlée et naïveté"}},
		{"testdata/windows1252.xml", "Quotes “Daily”", []string{"“Prices” rise to €5 – again"}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			res := parseFile(t, tt.file, "")
			if got := res.Title; got != tt.feedTitle {
				t.Errorf("feed Title = %q, want %q", got, tt.feedTitle)
			}
			var got []string
			for _, a := range res.Articles {
				got = append(got, a.Title)
			}
			if !reflect.DeepEqual(got, tt.titles) {
				t.Errorf("titles = %q, want %q", got, tt.titles)
			}
		})
	}
	t.Run("SummaryLatin1", func(t *testing.T) {
		res := parseFile(t, "testdata/latin1.xml", "")
		if got, want := res.Articles[0].SummaryHTML, "<p>Les électeurs ont choisi — façon de parler.</p>"; got != want {
			t.Errorf("SummaryHTML = %q, want %q", got, want)
		}
	})
}

func TestParseHostile(t *testing.T) {
	res := parseFile(t, "testdata/hostile.xml", "")
	if strings.ContainsAny(res.Title, "\r\n<") {
		t.Errorf("feed Title %q has CR, LF or '<'", res.Title)
	}

	var kept []string
	for _, a := range res.Articles {
		kept = append(kept, a.GUID)
	}
	if want := []string{"evil-1", "evil-7", "evil-9", "evil-10"}; !reflect.DeepEqual(kept, want) {
		t.Errorf("kept %q, want %q", kept, want)
	}
	wantSkipped := map[int]string{
		1:  `scheme "javascript" not allowed`,
		2:  `scheme "javascript" not allowed`,
		3:  `scheme "data" not allowed`,
		4:  "no link and no guid",
		5:  "user info",
		7:  "no title",
		10: "duplicate of item 0",
		11: "not a valid URL",
	}
	if got, want := len(res.Skipped), len(wantSkipped); got != want {
		t.Errorf("skipped %d items, want %d: %v", got, want, res.Skipped)
	}
	for _, s := range res.Skipped {
		if want, ok := wantSkipped[s.Index]; !ok || !strings.Contains(s.Reason, want) {
			t.Errorf("skipped item %d with %q, want a reason containing %q", s.Index, s.Reason, want)
		}
	}

	arts := byGUID(res.Articles)
	t.Run("TitleWithCRLFAndTags", func(t *testing.T) {
		if got, want := arts["evil-1"].Title, "Breaking Bcc: victim@example.org bold news"; got != want {
			t.Errorf("Title = %q, want %q", got, want)
		}
	})
	t.Run("Summary", func(t *testing.T) {
		a := arts["evil-1"]
		for _, bad := range []string{"alert", "steal", "cookie", "iframe", "password", "display:none", "evil.swf", "style=", "target="} {
			if strings.Contains(a.SummaryHTML, bad) {
				t.Errorf("SummaryHTML contains %q:\n%s", bad, a.SummaryHTML)
			}
		}
		if want := `<a href="https://good.example/" rel="noopener noreferrer">good link</a>`; !strings.Contains(a.SummaryHTML, want) {
			t.Errorf("SummaryHTML lost the safe link %s:\n%s", want, a.SummaryHTML)
		}
		if got, want := strings.Count(a.SummaryHTML, "<a "), 1; got != want {
			t.Errorf("SummaryHTML has %d links, want %d (only the https one):\n%s", got, want, a.SummaryHTML)
		}
		if !strings.HasPrefix(a.SummaryText, "Hello world. click me") || strings.Contains(a.SummaryText, "document") {
			t.Errorf("SummaryText = %q", a.SummaryText)
		}
	})
	t.Run("AuthorCategoriesImage", func(t *testing.T) {
		a := arts["evil-1"]
		if got, want := a.Author, "Mallory Subject: pwned x"; got != want {
			t.Errorf("Author = %q, want %q", got, want)
		}
		if got, want := len(a.Categories), MaxCategories; got != want {
			t.Errorf("%d categories, want %d", got, want)
		}
		if got, want := a.Categories[:2], []string{"News Bcc: a@b.example", "Tech"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Categories = %q, want %q first", a.Categories, want)
		}
		// javascript: and http images are refused; the first <img> of the
		// summary is used, made absolute against the item link.
		if got, want := a.ImageURL, "https://evil.example/x"; got != want {
			t.Errorf("ImageURL = %q, want %q", got, want)
		}
	})
	t.Run("TitleFromSummary", func(t *testing.T) {
		if got, want := arts["evil-7"].Title, "Title made only of a tag: this text becomes the title."; got != want {
			t.Errorf("Title = %q, want %q", got, want)
		}
	})
	t.Run("DoubleEscapedTitle", func(t *testing.T) {
		if got, want := arts["evil-9"].Title, "Double escaped title"; got != want {
			t.Errorf("Title = %q, want %q", got, want)
		}
	})
	t.Run("BidiControls", func(t *testing.T) {
		if got, want := arts["evil-10"].Title, "Bidi txt.exe spoof"; got != want {
			t.Errorf("Title = %q, want %q", got, want)
		}
	})
}

func TestParseHugeTitle(t *testing.T) {
	huge := strings.Repeat("<b>word</b> ", (1<<20)/12)
	feed := `<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title><link>https://huge.example/</link>` +
		`<item><title><![CDATA[` + huge + `]]></title><link>https://huge.example/1</link>` +
		`<description><![CDATA[` + strings.Repeat("<p>Lorem ipsum dolor sit amet.</p>", 20000) + `]]></description></item></channel></rss>`
	if len(feed) < 1<<20 {
		t.Fatalf("test feed is only %d bytes", len(feed))
	}
	res, err := Parse(strings.NewReader(feed), "", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Articles) != 1 {
		t.Fatalf("got %d articles, want 1 (skipped %v)", len(res.Articles), res.Skipped)
	}
	checkAll(t, res.Articles)
	a := res.Articles[0]
	if n := utf8.RuneCountInString(a.Title); n > MaxTitleRunes || n < MaxTitleRunes-10 {
		t.Errorf("title has %d runes, want about %d", n, MaxTitleRunes)
	}
	if !strings.HasSuffix(a.Title, "word…") {
		t.Errorf("title ends %q, want a whole word and …", a.Title[len(a.Title)-20:])
	}
	if !strings.HasSuffix(a.SummaryHTML, "…</p>") || len(a.SummaryHTML) < MaxSummaryHTMLBytes-100 {
		t.Errorf("summary HTML (%d bytes) ends %q, want about %d bytes ending …</p>", len(a.SummaryHTML), a.SummaryHTML[len(a.SummaryHTML)-20:], MaxSummaryHTMLBytes)
	}
}

func TestParseRelativeLinks(t *testing.T) {
	res := parseFile(t, "testdata/relative.xml", "https://ignored.example/feed.xml")
	arts := byGUID(res.Articles)
	one := arts["rel-1"]
	if got, want := one.Link, "https://relative.example/news/2026/story-one"; got != want {
		t.Errorf("path-relative link = %q, want %q", got, want)
	}
	for _, want := range []string{
		`href="https://relative.example/news/2026/related"`,
		`href="https://relative.example/about"`,
		`href="https://other.example/x"`,
		`href="mailto:tips@relative.example"`,
	} {
		if !strings.Contains(one.SummaryHTML, want) {
			t.Errorf("SummaryHTML lacks %s:\n%s", want, one.SummaryHTML)
		}
	}
	if got, want := one.ImageURL, "https://relative.example/news/img/one.jpg"; got != want {
		t.Errorf("relative <img>: ImageURL = %q, want %q", got, want)
	}
	two := arts["rel-2"]
	if got, want := two.Link, "https://relative.example/2026/story-two"; got != want {
		t.Errorf("root-relative link = %q, want %q", got, want)
	}
	if got, want := two.ImageURL, "https://relative.example/img/two.jpg"; got != want {
		t.Errorf("relative enclosure: ImageURL = %q, want %q", got, want)
	}
	three := arts["https://relative.example/2026/story-three"]
	if got, want := three.Link, "https://relative.example/2026/story-three"; got != want {
		t.Errorf("permalink guid: Link = %q, want %q", got, want)
	}

	t.Run("BaseWhenFeedHasNoLink", func(t *testing.T) {
		feed := `<rss version="2.0"><channel><title>T</title>` +
			`<item><title>A</title><link>/a</link></item>` +
			`<item><title>B</title><link>/b</link></item></channel></rss>`
		res, err := Parse(strings.NewReader(feed), "https://base.example/feeds/main.xml", testNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Articles) != 2 {
			t.Fatalf("got %d articles, want 2 (skipped %v)", len(res.Articles), res.Skipped)
		}
		if got, want := res.Articles[0].Link, "https://base.example/a"; got != want {
			t.Errorf("Link = %q, want %q", got, want)
		}
	})
	t.Run("NoBaseSkipsRelative", func(t *testing.T) {
		feed := `<rss version="2.0"><channel><title>T</title><item><title>A</title><link>/a</link></item></channel></rss>`
		res, err := Parse(strings.NewReader(feed), "", testNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Articles) != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "not an absolute URL") {
			t.Errorf("got %v, skipped %v; want the item skipped as not absolute", res.Articles, res.Skipped)
		}
	})
}

func TestParseMissingDates(t *testing.T) {
	res := parseFile(t, "testdata/nodates.xml", "")
	if got, want := len(res.Articles), 4; got != want {
		t.Fatalf("got %d articles, want %d", got, want)
	}
	for i, want := range []time.Time{testNow, testNow, testNow, time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)} {
		if got := res.Articles[i].Published; !got.Equal(want) {
			t.Errorf("article %d (%s): Published = %v, want %v", i, res.Articles[i].Title, got, want)
		}
	}
	var notes []int
	for _, n := range res.Notes {
		notes = append(notes, n.Index)
	}
	if want := []int{0, 1, 2}; !reflect.DeepEqual(notes, want) {
		t.Errorf("notes for items %v, want %v: %v", notes, want, res.Notes)
	}
	if !strings.Contains(res.Notes[2].Reason, "future") {
		t.Errorf("note for the future date = %q", res.Notes[2].Reason)
	}
}

func TestParseNotAFeed(t *testing.T) {
	for name, in := range map[string]string{
		"HTML":  "<!doctype html><html><body><p>Not a feed</p></body></html>",
		"Empty": "",
		"Text":  "hello",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(in), "", testNow)
			if !errors.Is(err, ErrNotAFeed) {
				t.Errorf("err = %v, want ErrNotAFeed", err)
			}
		})
	}
	t.Run("BrokenXML", func(t *testing.T) {
		_, err := Parse(strings.NewReader(`<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item><title>&#0;</title></item></channel></rss>`), "", testNow)
		if err == nil || !strings.HasPrefix(err.Error(), "feed: ") {
			t.Errorf("err = %v, want a feed: parse error", err)
		}
	})
}

func TestDemoFeed(t *testing.T) {
	res := parseFile(t, "../../templates/demo/feed.xml", "https://harbourgazette.example/feed.xml")
	if got, want := res.Title, "The Harbour Gazette"; got != want {
		t.Errorf("Title = %q, want %q", got, want)
	}
	if got, want := len(res.Articles), 14; got != want {
		t.Fatalf("got %d articles, want %d (skipped %v)", got, want, res.Skipped)
	}
	if len(res.Skipped) != 0 || len(res.Notes) != 0 {
		t.Errorf("Skipped = %v, Notes = %v, want none", res.Skipped, res.Notes)
	}
	cats := map[string]bool{"Local": true, "Politics": true, "Business": true, "Sport": true, "Culture": true, "Science": true}
	images, sawScript := 0, false
	oldest := testNow
	for _, a := range res.Articles {
		if strings.Contains(a.SummaryHTML, "script") || strings.Contains(a.SummaryHTML, "onclick") || strings.Contains(a.SummaryHTML, "tracker.example") {
			t.Errorf("%q: SummaryHTML not sanitized: %s", a.Title, a.SummaryHTML)
		}
		if strings.Contains(a.Title, "seaweed") {
			sawScript = true
			if want := `<a href="https://harbourgazette.example/business/kelpwrap-interview" rel="noopener noreferrer">with the founders</a>`; !strings.Contains(a.SummaryHTML, want) {
				t.Errorf("%q: SummaryHTML lacks %s:\n%s", a.Title, want, a.SummaryHTML)
			}
		}
		if len(a.Categories) != 1 || !cats[a.Categories[0]] {
			t.Errorf("%q: Categories = %q", a.Title, a.Categories)
		}
		if a.Author == "" || a.GUID == "" || a.SummaryText == "" {
			t.Errorf("%q: missing author, guid or summary: %+v", a.Title, a)
		}
		if a.ImageURL != "" {
			images++
			if !strings.HasPrefix(a.ImageURL, "https://harbourgazette.example/img/") {
				t.Errorf("%q: ImageURL = %q", a.Title, a.ImageURL)
			}
		}
		if a.Published.After(testNow) {
			t.Errorf("%q: Published %v is after %v", a.Title, a.Published, testNow)
		}
		if a.Published.Before(oldest) {
			oldest = a.Published
		}
	}
	if !sawScript {
		t.Error("the item with the <script> is missing")
	}
	if images == 0 || images == len(res.Articles) {
		t.Errorf("%d of %d articles have an image, want some", images, len(res.Articles))
	}
	if age := testNow.Sub(oldest); age < 24*time.Hour || age > 31*time.Hour {
		t.Errorf("oldest story is %v old, want about 30h", age)
	}
}

func TestDemoArticlesMatchFeed(t *testing.T) {
	feed := parseFile(t, "../../templates/demo/feed.xml", "")
	f, err := os.Open("../../templates/demo/articles.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	updates, bad, err := ReadArticlesJSON(f, testNow)
	if err != nil || len(bad) != 0 {
		t.Fatalf("ReadArticlesJSON: %v, %v", err, bad)
	}
	ids := make(map[string]bool)
	for _, a := range feed.Articles {
		ids[a.ID] = true
	}
	if got, want := len(updates), 14; got != want {
		t.Errorf("%d updates, want %d", got, want)
	}
	for _, u := range updates {
		if !IsPopularityUpdate(u) || u.Views <= 0 || !ids[u.ID] {
			t.Errorf("update %+v: want a popularity update with views for an article of the feed", u)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("../../templates/demo/feed.xml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(data), "", testNow); err != nil {
			b.Fatal(err)
		}
	}
}
