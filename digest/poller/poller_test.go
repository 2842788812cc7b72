package poller

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/feed"
)

var t0 = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func openStore(t *testing.T, clock digest.Clock) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "test.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Clock = clock
	t.Cleanup(func() { s.Close() })
	return s
}

func rss(items ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Harbour News</title><link>https://news.example.org/</link>`)
	for i, it := range items {
		fmt.Fprintf(&b, `<item><title>%s</title><link>https://news.example.org/%d</link><guid>g-%d</guid><pubDate>Fri, 27 Nov 2026 05:00:00 GMT</pubDate><description>About %s.</description></item>`, it, i, i, it)
	}
	b.WriteString(`</channel></rss>`)
	return b.String()
}

// feedServer serves a feed with an ETag and answers 304 to a matching
// If-None-Match; mode switches it to failing or hanging.
type feedServer struct {
	*httptest.Server
	mode     atomic.Value // "ok", "500", "slow"
	hits     atomic.Int32
	body     atomic.Value // string
	lastINM  atomic.Value // If-None-Match of the last request
	lastIMS  atomic.Value // If-Modified-Since of the last request
	released chan struct{}
}

func newFeedServer(t *testing.T, body string) *feedServer {
	fs := &feedServer{released: make(chan struct{})}
	fs.mode.Store("ok")
	fs.body.Store(body)
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.hits.Add(1)
		fs.lastINM.Store(r.Header.Get("If-None-Match"))
		fs.lastIMS.Store(r.Header.Get("If-Modified-Since"))
		switch fs.mode.Load().(string) {
		case "500":
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case "slow":
			select {
			case <-r.Context().Done():
			case <-fs.released:
			}
			return
		}
		b := fs.body.Load().(string)
		etag := fmt.Sprintf(`"%d"`, len(b))
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", "Fri, 27 Nov 2026 05:00:00 GMT")
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
		w.Write([]byte(b))
	}))
	t.Cleanup(func() { close(fs.released); fs.Close() })
	return fs
}

func TestPollScheduleConditionalGETAndBackoff(t *testing.T) {
	clock := &fakeClock{now: t0}
	store := openStore(t, clock)
	srv := newFeedServer(t, rss("Storm warning", "Ferry strike"))
	f := digest.Feed{URL: srv.URL + "/feed.xml"}
	f.ID = digest.FeedID(f.URL)
	if err := store.PutFeed(f); err != nil {
		t.Fatal(err)
	}
	p := &Poller{
		Store: store, Clock: clock, Interval: 10 * time.Minute, MaxBackoff: time.Hour,
		Fetcher: &feed.Fetcher{Client: srv.Client(), Clock: clock},
	}
	ctx := context.Background()
	poll := func(at time.Time) digest.Feed {
		t.Helper()
		clock.Set(at)
		next, err := p.PollDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.GetFeed(f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !next.Equal(got.NextPoll) {
			t.Errorf("PollDue returned next %v, the feed's NextPoll is %v", next, got.NextPoll)
		}
		return got
	}

	// First poll: a full fetch, two new articles.
	got := poll(t0)
	if srv.hits.Load() != 1 || got.NewItems != 2 || got.Title != "Harbour News" || got.ETag == "" {
		t.Fatalf("first poll: hits %d, feed %+v", srv.hits.Load(), got)
	}
	if want := t0.Add(10 * time.Minute); !got.NextPoll.Equal(want) || !got.LastFetch.Equal(t0) {
		t.Fatalf("NextPoll %v, LastFetch %v; want %v, %v", got.NextPoll, got.LastFetch, want, t0)
	}
	if as, _ := store.Articles(time.Time{}); len(as) != 2 || as[0].Source != f.ID {
		t.Fatalf("stored articles: %+v", as)
	}

	// Not due yet: no request.
	poll(t0.Add(9*time.Minute + 59*time.Second))
	if srv.hits.Load() != 1 {
		t.Fatalf("a feed not due was fetched (hits %d)", srv.hits.Load())
	}

	// Due: a conditional GET answered 304.
	got = poll(t0.Add(10 * time.Minute))
	if srv.hits.Load() != 2 || srv.lastINM.Load() != got.ETag || srv.lastIMS.Load() != "Fri, 27 Nov 2026 05:00:00 GMT" {
		t.Fatalf("second poll: hits %d, If-None-Match %q, If-Modified-Since %q", srv.hits.Load(), srv.lastINM.Load(), srv.lastIMS.Load())
	}
	if got.NewItems != 0 || got.LastError != "" || !got.NextPoll.Equal(t0.Add(20*time.Minute)) {
		t.Fatalf("after 304: %+v", got)
	}

	// Failures: 500, then 500, … back off 20, 40, 60 (the cap), 60 minutes.
	srv.mode.Store("500")
	at := t0.Add(20 * time.Minute)
	for i, wait := range []time.Duration{20, 40, 60, 60} {
		got = poll(at)
		if got.Failures != i+1 || !strings.Contains(got.LastError, "500") {
			t.Fatalf("failure %d: %+v", i+1, got)
		}
		if want := at.Add(wait * time.Minute); !got.NextPoll.Equal(want) {
			t.Fatalf("failure %d: NextPoll %v, want %v (back-off %d min)", i+1, got.NextPoll, want, wait)
		}
		// Halfway through the back-off nothing is fetched.
		hits := srv.hits.Load()
		poll(at.Add(wait * time.Minute / 2))
		if srv.hits.Load() != hits {
			t.Fatalf("fetched during back-off %d", i+1)
		}
		at = got.NextPoll
	}

	// Recovery: a new item, failures reset, the interval again.
	srv.mode.Store("ok")
	srv.body.Store(rss("Storm warning", "Ferry strike", "Bridge reopens"))
	got = poll(at)
	if got.Failures != 0 || got.LastError != "" || got.NewItems != 1 || !got.NextPoll.Equal(at.Add(10*time.Minute)) {
		t.Fatalf("after recovery: %+v", got)
	}
}

func TestPollSlowFeedTimesOutOthersGoOn(t *testing.T) {
	clock := &fakeClock{now: t0}
	store := openStore(t, clock)
	slow := newFeedServer(t, rss("Slow"))
	slow.mode.Store("slow")
	fast := newFeedServer(t, rss("Fast one"))
	for _, u := range []string{slow.URL + "/slow.xml", fast.URL + "/fast.xml"} {
		if err := store.PutFeed(digest.Feed{URL: u}); err != nil {
			t.Fatal(err)
		}
	}
	// The client's timeout is what bounds a slow feed.
	client := &http.Client{Timeout: 200 * time.Millisecond}
	p := &Poller{Store: store, Clock: clock, Fetcher: &feed.Fetcher{Client: client, Clock: clock}}
	if _, err := p.PollDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs, _ := store.Feeds()
	for _, f := range fs {
		switch {
		case strings.Contains(f.URL, "slow"):
			if f.Failures != 1 || !strings.Contains(f.LastError, "Timeout") {
				t.Errorf("slow feed: failures %d, error %q; want a timeout", f.Failures, f.LastError)
			}
			if want := t0.Add(2 * DefaultInterval); !f.NextPoll.Equal(want) {
				t.Errorf("slow feed: NextPoll %v, want %v", f.NextPoll, want)
			}
		default:
			if f.Failures != 0 || f.NewItems != 1 {
				t.Errorf("fast feed: %+v", f)
			}
		}
	}
}

func TestDelay(t *testing.T) {
	p := &Poller{Interval: 15 * time.Minute, MaxBackoff: 2 * time.Hour}
	for _, tc := range []struct {
		f    digest.Feed
		want time.Duration
	}{
		{digest.Feed{}, 15 * time.Minute},
		{digest.Feed{Failures: 1}, 30 * time.Minute},
		{digest.Feed{Failures: 2}, time.Hour},
		{digest.Feed{Failures: 3}, 2 * time.Hour},
		{digest.Feed{Failures: 1000}, 2 * time.Hour},
		{digest.Feed{Interval: time.Hour}, time.Hour},
		{digest.Feed{Interval: 3 * time.Hour, Failures: 2}, 3 * time.Hour}, // the cap is at least the interval
	} {
		if got := p.Delay(tc.f); got != tc.want {
			t.Errorf("Delay(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

// TestRunWaitsUntilNextPoll drives Run with a fake After: it must poll,
// then ask to wait until the next poll is due (capped at MaxSleep), and
// stop when the context ends.
func TestRunWaitsUntilNextPoll(t *testing.T) {
	clock := &fakeClock{now: t0}
	store := openStore(t, clock)
	srv := newFeedServer(t, rss("One"))
	f := digest.Feed{URL: srv.URL + "/feed.xml", Interval: 30 * time.Second}
	if err := store.PutFeed(f); err != nil {
		t.Fatal(err)
	}
	waits := make(chan time.Duration)
	release := make(chan time.Time)
	p := &Poller{
		Store: store, Clock: clock, Fetcher: &feed.Fetcher{Client: srv.Client(), Clock: clock},
		After: func(d time.Duration) <-chan time.Time { waits <- d; return release },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	if d := <-waits; d != 30*time.Second || srv.hits.Load() != 1 {
		t.Fatalf("first wait %v after %d fetches; want 30s after 1", d, srv.hits.Load())
	}
	clock.Set(t0.Add(10 * time.Second)) // woken early (e.g. the cap): not due yet
	release <- clock.Now()
	if d := <-waits; d != 20*time.Second || srv.hits.Load() != 1 {
		t.Fatalf("second wait %v after %d fetches; want 20s after 1", d, srv.hits.Load())
	}
	clock.Set(t0.Add(30 * time.Second))
	release <- clock.Now()
	if d := <-waits; d != 30*time.Second || srv.hits.Load() != 2 {
		t.Fatalf("third wait %v after %d fetches; want 30s after 2", d, srv.hits.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunCapsTheWait(t *testing.T) {
	clock := &fakeClock{now: t0}
	store := openStore(t, clock)
	waits := make(chan time.Duration, 1)
	p := &Poller{Store: store, Clock: clock,
		After: func(d time.Duration) <-chan time.Time { waits <- d; return make(chan time.Time) }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if d := <-waits; d != MaxSleep {
		t.Fatalf("wait with no feeds %v, want MaxSleep %v", d, MaxSleep)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFetchOneRemovedMeanwhile(t *testing.T) {
	clock := &fakeClock{now: t0}
	store := openStore(t, clock)
	srv := newFeedServer(t, rss("One"))
	f := digest.Feed{URL: srv.URL + "/feed.xml"}
	f.ID = digest.FeedID(f.URL)
	p := &Poller{Store: store, Clock: clock, Fetcher: &feed.Fetcher{Client: srv.Client()}}
	// Never stored (or removed): FetchOne must not bring it back.
	if _, err := p.FetchOne(context.Background(), f); err == nil || !strings.Contains(err.Error(), ErrGone.Error()) {
		t.Fatalf("err = %v, want ErrGone", err)
	}
	if fs, _ := store.Feeds(); len(fs) != 0 {
		t.Fatalf("a removed feed was stored again: %+v", fs)
	}
}

// TestLargeFeed polls a feed of about 5 MB (generated, not committed).
func TestLargeFeed(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Big</title><link>https://big.example.org/</link>`)
	para := strings.Repeat("The harbour authority said the storm would pass by noon. ", 400)
	n := 0
	for b.Len() < 5<<20 {
		fmt.Fprintf(&b, `<item><title>Story %d</title><link>https://big.example.org/s/%d</link><guid>big-%d</guid><pubDate>Fri, 27 Nov 2026 05:00:00 GMT</pubDate><content:encoded><![CDATA[<p>%s</p><p>%s</p>]]></content:encoded></item>`, n, n, n, para, para)
		n++
	}
	b.WriteString(`</channel></rss>`)
	if b.Len() < 5<<20 {
		t.Fatal("fixture too small")
	}
	clock := &fakeClock{now: t0}
	store := openStore(t, clock)
	srv := newFeedServer(t, b.String())
	f := digest.Feed{URL: srv.URL + "/big.xml"}
	f.ID = digest.FeedID(f.URL)
	if err := store.PutFeed(f); err != nil {
		t.Fatal(err)
	}
	p := &Poller{Store: store, Clock: clock, Fetcher: &feed.Fetcher{Client: srv.Client(), Clock: clock}}
	got, err := store.GetFeed(f.ID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.FetchOne(context.Background(), got)
	if err != nil || out.Err != nil {
		t.Fatalf("FetchOne: %v / %v", err, out.Err)
	}
	if out.Added != n || out.Feed.NewItems != n {
		t.Fatalf("added %d (feed says %d), want %d", out.Added, out.Feed.NewItems, n)
	}
	// The same feed under a 1 MB limit is refused, and says why.
	p.Fetcher = &feed.Fetcher{Client: srv.Client(), Clock: clock, MaxBytes: 1 << 20}
	srv.body.Store(b.String() + " ") // a new ETag: no 304
	out, err = p.FetchOne(context.Background(), out.Feed)
	if err != nil || out.Err == nil || !strings.Contains(out.Feed.LastError, "too large") {
		t.Fatalf("over the limit: err %v, outcome %v, last error %q", err, out.Err, out.Feed.LastError)
	}
}
