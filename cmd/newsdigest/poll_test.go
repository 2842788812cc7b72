package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServePollsFeeds runs the daemon with its poller: a feed added
// through the admin API (without fetching) is polled at once, its
// articles stored, and `feeds list` shows the poll.
func TestServePollsFeeds(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/rss+xml")
		fmt.Fprintf(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>Polled</title><link>https://polled.example.org/</link>`+
			`<item><title>Tide tables</title><link>https://polled.example.org/tides</link><pubDate>%s</pubDate></item></channel></rss>`,
			time.Now().UTC().Format(time.RFC1123Z))
	}))
	defer srv.Close()

	c := daemonCLI(t)
	var env []string
	for _, kv := range c.environ {
		if !strings.HasPrefix(kv, "NEWSDIGEST_FEEDS_POLL=") {
			env = append(env, kv)
		}
	}
	c.environ = env
	startDaemon(t, c)
	c.ok("feeds", "add", srv.URL+"/feed.xml", "--no-fetch")
	// The poller stores the articles first and the feed's status (title,
	// last fetch, next poll) after them, so wait for both.
	deadline := time.Now().Add(10 * time.Second)
	var out string
	for {
		out = c.ok("feeds", "list")
		if strings.Contains(out, "Polled") && strings.Contains(c.ok("articles", "list"), "Tide tables") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not poll the new feed (%d requests); feeds list:\n%s", hits.Load(), out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out, "NEXT POLL") {
		t.Fatalf("feeds list:\n%s", out)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d requests, want 1 (the next poll is an interval away)", n)
	}
}
