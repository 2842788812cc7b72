package feed

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"newsdigest/digest"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFetchConditionalGET(t *testing.T) {
	body := readFixture(t, "rss2.xml")
	const etag = `"v1"`
	const lastMod = "Thu, 26 Nov 2026 09:00:00 GMT"
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", lastMod)
		w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
		w.Write(body)
	}))
	defer srv.Close()

	f := &Fetcher{Client: srv.Client(), Clock: digest.FixedClock(testNow)}
	feed := digest.Feed{URL: srv.URL + "/feed.xml"}

	first, err := f.Fetch(context.Background(), feed)
	if err != nil {
		t.Fatal(err)
	}
	if first.NotModified || len(first.Articles) != 3 {
		t.Fatalf("first fetch: NotModified = %v, %d articles; want false, 3", first.NotModified, len(first.Articles))
	}
	checkAll(t, first.Articles)
	if first.ETag != etag || first.LastModified != lastMod {
		t.Errorf("first fetch: ETag, LastModified = %q, %q; want %q, %q", first.ETag, first.LastModified, etag, lastMod)
	}

	feed.ETag, feed.LastModified = first.ETag, first.LastModified
	second, err := f.Fetch(context.Background(), feed)
	if err != nil {
		t.Fatal(err)
	}
	if !second.NotModified || len(second.Articles) != 0 {
		t.Errorf("second fetch: NotModified = %v, %d articles; want true, 0", second.NotModified, len(second.Articles))
	}
	if second.ETag != etag || second.LastModified != lastMod {
		t.Errorf("second fetch: ETag, LastModified = %q, %q; want them carried over", second.ETag, second.LastModified)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(seen))
	}
	if got := seen[0].Get("If-None-Match"); got != "" {
		t.Errorf("first request sent If-None-Match %q", got)
	}
	if got := seen[1].Get("If-None-Match"); got != etag {
		t.Errorf("If-None-Match = %q, want %q", got, etag)
	}
	if got := seen[1].Get("If-Modified-Since"); got != lastMod {
		t.Errorf("If-Modified-Since = %q, want %q", got, lastMod)
	}
	if got := seen[0].Get("User-Agent"); got != DefaultUserAgent {
		t.Errorf("User-Agent = %q, want %q", got, DefaultUserAgent)
	}
}

func TestFetchUnsafeValidatorNotSent(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("If-None-Match"))
		w.WriteHeader(http.StatusNotModified)
	}))
	defer srv.Close()
	f := &Fetcher{Client: srv.Client()}
	_, err := f.Fetch(context.Background(), digest.Feed{URL: srv.URL, ETag: "\"x\"\r\nX-Evil: 1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "" {
		t.Errorf("If-None-Match = %q, want none", got)
	}
}

func TestFetchErrors(t *testing.T) {
	big := strings.Repeat("x", 4096)
	mux := http.NewServeMux()
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/404", http.NotFound)
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>` + big + `</title></channel></rss>`))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>`))
		w.(http.Flusher).Flush() // no Content-Length: the limit must hold while reading
		w.Write([]byte(big + `</title></channel></rss>`))
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<!doctype html><title>Welcome</title>"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f := &Fetcher{Client: srv.Client(), MaxBytes: 1024}

	tests := []struct {
		path string
		want []string
		is   error
	}{
		{"/500", []string{srv.URL + "/500", "500 Internal Server Error"}, nil},
		{"/404", []string{srv.URL + "/404", "404"}, nil},
		{"/big", []string{srv.URL + "/big", "1024 bytes"}, ErrTooLarge},
		{"/big-chunked", []string{srv.URL + "/big-chunked", "1024 bytes"}, ErrTooLarge},
		{"/html", []string{srv.URL + "/html"}, ErrNotAFeed},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			_, err := f.Fetch(context.Background(), digest.Feed{URL: srv.URL + tt.path})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

func TestFetchTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release) // runs before srv.Close, so the handler returns

	client := srv.Client()
	client.Timeout = 50 * time.Millisecond
	f := &Fetcher{Client: client}
	done := make(chan error, 1)
	go func() {
		_, err := f.Fetch(context.Background(), digest.Feed{URL: srv.URL + "/slow"})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), srv.URL+"/slow") {
			t.Errorf("err = %v, want a timeout naming the feed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Fetch did not return: the client timeout was not honoured")
	}
}

func TestFetchContextCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Fetcher{Client: srv.Client()}).Fetch(ctx, digest.Feed{URL: srv.URL})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestFetchCharsetFromContentType(t *testing.T) {
	doc := `<rss version="2.0"><channel><title>Café</title><link>https://cafe.example/</link>` +
		`<item><title>Crème brûlée</title><link>https://cafe.example/1</link></item></channel></rss>`
	latin, err := charmap.ISO8859_1.NewEncoder().String(doc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml; charset=ISO-8859-1")
		w.Write([]byte(latin))
	}))
	defer srv.Close()
	res, err := (&Fetcher{Client: srv.Client()}).Fetch(context.Background(), digest.Feed{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Articles) != 1 || res.Articles[0].Title != "Crème brûlée" || res.Title != "Café" {
		t.Errorf("got title %q and articles %v; want Café and Crème brûlée", res.Title, res.Articles)
	}
}

func TestFetchRelativeToResponseURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new/feed.xml", http.StatusMovedPermanently)
			return
		}
		w.Write([]byte(`<rss version="2.0"><channel><title>T</title><item><title>A</title><link>story</link></item></channel></rss>`))
	}))
	defer srv.Close()
	res, err := (&Fetcher{Client: srv.Client()}).Fetch(context.Background(), digest.Feed{URL: srv.URL + "/old"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Articles) != 1 {
		t.Fatalf("got %v, skipped %v", res.Articles, res.Skipped)
	}
	if got, want := res.Articles[0].Link, srv.URL+"/new/story"; got != want {
		t.Errorf("Link = %q, want %q", got, want)
	}
}

func TestFetchFile(t *testing.T) {
	f := &Fetcher{Clock: digest.FixedClock(testNow)}
	t.Run("OK", func(t *testing.T) {
		res, err := f.Fetch(context.Background(), digest.Feed{URL: filepath.Join("testdata", "atom.xml")})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Articles) != 2 || res.ETag != "" || res.NotModified {
			t.Errorf("got %d articles, ETag %q, NotModified %v; want 2, empty, false", len(res.Articles), res.ETag, res.NotModified)
		}
		checkAll(t, res.Articles)
	})
	t.Run("FileURL", func(t *testing.T) {
		abs, err := filepath.Abs(filepath.Join("testdata", "atom.xml"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.Fetch(context.Background(), digest.Feed{URL: "file://" + filepath.ToSlash(abs)})
		if err != nil || len(res.Articles) != 2 {
			t.Errorf("got %d articles, %v; want 2", len(res.Articles), err)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.xml")
		_, err := f.Fetch(context.Background(), digest.Feed{URL: path})
		if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want not-exist naming %s", err, path)
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		small := &Fetcher{MaxBytes: 100}
		path := filepath.Join("testdata", "rss2.xml")
		_, err := small.Fetch(context.Background(), digest.Feed{URL: path})
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "100 bytes") {
			t.Errorf("err = %v, want ErrTooLarge naming %s and the limit", err, path)
		}
	})
}
