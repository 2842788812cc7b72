package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestFeedsFetchJSON: 'feeds fetch --json' reports each feed's fetch
// (items, new, already known, the skipped items with why) and the failed
// feeds as one JSON object, and still exits 1 when a feed failed; the
// text says known items are "already known", not "updated".
func TestFeedsFetchJSON(t *testing.T) {
	c := newCLI(t, "")
	now := nowRFC1123()
	feed := sampleFeedAt(now)
	feed = strings.Replace(feed, "</channel>", "<item><guid>g9</guid><title>No link</title><link>javascript:alert(1)</link></item></channel>", 1)
	good := c.file("feed.xml", feed)
	gone := c.file("gone.xml", feed)
	c.ok("feeds", "add", good)
	c.ok("feeds", "add", gone)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}

	code, out, _ := c.run("feeds", "fetch", "--json")
	if code != 1 {
		t.Errorf("exit %d with a failing feed; want 1", code)
	}
	var rep struct {
		Feeds []struct {
			URL          string `json:"url"`
			Items        int    `json:"items"`
			New          int    `json:"new"`
			Known        int    `json:"known"`
			Skipped      int    `json:"skipped"`
			SkippedItems []struct {
				Title  string `json:"title"`
				Reason string `json:"reason"`
			} `json:"skipped_items"`
			Error string `json:"error"`
		} `json:"feeds"`
		Failed int `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("feeds fetch --json: %v:\n%s", err, out)
	}
	if len(rep.Feeds) != 2 || rep.Failed != 1 {
		t.Fatalf("feeds fetch --json: %d feeds, %d failed; want 2 and 1:\n%s", len(rep.Feeds), rep.Failed, out)
	}
	for _, f := range rep.Feeds {
		switch f.URL {
		case good:
			if f.Items != 2 || f.New != 0 || f.Known != 2 || f.Skipped != 1 || len(f.SkippedItems) != 1 || f.SkippedItems[0].Title != "No link" || f.SkippedItems[0].Reason == "" || f.Error != "" {
				t.Errorf("the good feed: %+v; want 2 items, 2 known, 1 skipped (No link, with why)", f)
			}
		case gone:
			if f.Error == "" || f.Items != 0 {
				t.Errorf("the removed feed: %+v; want its error", f)
			}
		default:
			t.Errorf("unknown feed %q", f.URL)
		}
	}

	code, out, errs := c.run("feeds", "fetch", good)
	if code != 0 || !strings.Contains(out, "2 items, 0 new, 2 already known, 1 skipped") || !strings.Contains(errs, `"No link" skipped`) {
		t.Errorf("feeds fetch: exit %d\n%s%s", code, out, errs)
	}
}
