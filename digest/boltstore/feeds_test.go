package boltstore

import (
	"errors"
	"testing"
	"time"

	"newsdigest/digest"
)

func TestFeeds(t *testing.T) {
	s, clock := mustOpen(t)
	const url1, url2 = "https://example.org/feed.xml", "testdata/feed.json"
	if err := s.PutFeed(digest.Feed{URL: url1, Title: "Example"}); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(time.Minute))
	if err := s.PutFeed(digest.Feed{URL: url2}); err != nil {
		t.Fatal(err)
	}

	for _, key := range []string{url1, digest.FeedID(url1)} {
		f, err := s.GetFeed(key)
		if err != nil {
			t.Fatalf("GetFeed(%q): %v", key, err)
		}
		if f.ID != digest.FeedID(url1) || f.Title != "Example" || !f.Added.Equal(t0) {
			t.Errorf("GetFeed(%q) = %+v", key, f)
		}
	}

	// Replacing keeps Added and stores the poll state.
	clock.Set(t0.Add(time.Hour))
	if err := s.PutFeed(digest.Feed{URL: url1, Title: "Example", ETag: `"v2"`, Failures: 2}); err != nil {
		t.Fatal(err)
	}
	f, _ := s.GetFeed(url1)
	if !f.Added.Equal(t0) || f.ETag != `"v2"` || f.Failures != 2 {
		t.Errorf("after replace = %+v; want Added kept, ETag and Failures stored", f)
	}

	fs, err := s.Feeds()
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].URL != url1 || fs[1].URL != url2 {
		t.Errorf("Feeds() = %+v, want %s then %s (by Added)", fs, url1, url2)
	}

	if err := s.PutFeed(digest.Feed{URL: url1, ID: "deadbeef"}); err == nil {
		t.Error("PutFeed with a mismatched ID succeeded")
	}
	if err := s.PutFeed(digest.Feed{}); err == nil {
		t.Error("PutFeed without URL succeeded")
	}

	if err := s.DeleteFeed(digest.FeedID(url2)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFeed(url1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetFeed(url1); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetFeed after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteFeed(url1); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteFeed = %v, want ErrNotFound", err)
	}
}
