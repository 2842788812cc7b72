package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/net/html/charset"

	"newsdigest/digest"
)

// Defaults used by a zero Fetcher.
const (
	DefaultTimeout   = 15 * time.Second
	DefaultMaxBytes  = 10 << 20
	DefaultUserAgent = "newsdigest/1 (+feed fetcher)"
)

// acceptHeader lists the feed media types we understand, best first.
const acceptHeader = "application/rss+xml, application/atom+xml, application/feed+json, " +
	"application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"

// ErrTooLarge is returned (wrapped, with the feed and the limit) when a
// feed's body is larger than Fetcher.MaxBytes.
var ErrTooLarge = errors.New("body too large")

// Fetcher reads feeds from http(s) URLs and files. The zero value is ready
// to use; a Fetcher is safe for concurrent use.
type Fetcher struct {
	Client    *http.Client // default: a client with a 15s timeout
	MaxBytes  int64        // body size limit; default 10 MiB
	UserAgent string       // default "newsdigest/1 (+feed fetcher)"
	Clock     digest.Clock // default digest.SystemClock{}
}

var defaultClient = &http.Client{Timeout: DefaultTimeout}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return defaultClient
}

func (f *Fetcher) maxBytes() int64 {
	if f.MaxBytes > 0 {
		return f.MaxBytes
	}
	return DefaultMaxBytes
}

func (f *Fetcher) now() time.Time {
	if f.Clock != nil {
		return f.Clock.Now()
	}
	return time.Now()
}

// Fetch reads and parses one feed. When feed.URL is an http or https URL it
// makes a conditional GET (If-None-Match from feed.ETag, If-Modified-Since
// from feed.LastModified): a 304 answer gives a Result with NotModified set,
// any other status outside 2xx is an error naming the status. Anything else
// is read as a file path (a file: URL is accepted too). Either way the body
// may be at most MaxBytes long, and errors name the feed.
func (f *Fetcher) Fetch(ctx context.Context, feed digest.Feed) (Result, error) {
	if u, err := url.Parse(feed.URL); err == nil {
		switch strings.ToLower(u.Scheme) {
		case "http", "https":
			return f.fetchHTTP(ctx, feed, u)
		case "file":
			return f.fetchFile(feed, u.Path)
		}
	}
	return f.fetchFile(feed, feed.URL)
}

func (f *Fetcher) fetchFile(feed digest.Feed, path string) (Result, error) {
	file, err := os.Open(path)
	if err != nil {
		return Result{}, fmt.Errorf("feed: %w", err)
	}
	defer file.Close()
	body, err := readLimited(file, f.maxBytes())
	if err != nil {
		return Result{}, fmt.Errorf("feed: %s: %w", path, err)
	}
	res, err := parse(bytes.NewReader(body), "", f.now())
	if err != nil {
		return Result{}, fmt.Errorf("feed: %s: %w", path, err)
	}
	return res, nil
}

func (f *Fetcher) fetchHTTP(ctx context.Context, feed digest.Feed, u *url.URL) (Result, error) {
	name := u.Redacted()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Result{}, fmt.Errorf("feed: %s: %w", name, err)
	}
	ua := f.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", acceptHeader)
	if v := headerValue(feed.ETag); v != "" {
		req.Header.Set("If-None-Match", v)
	}
	if v := headerValue(feed.LastModified); v != "" {
		req.Header.Set("If-Modified-Since", v)
	}

	resp, err := f.client().Do(req)
	if err != nil {
		// The url.Error already names the method and URL.
		return Result{}, fmt.Errorf("feed: %w", err)
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusNotModified {
		res := Result{NotModified: true, ETag: feed.ETag, LastModified: feed.LastModified}
		if v := headerValue(resp.Header.Get("ETag")); v != "" {
			res.ETag = v
		}
		if v := headerValue(resp.Header.Get("Last-Modified")); v != "" {
			res.LastModified = v
		}
		return res, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Result{}, fmt.Errorf("feed: GET %s: server answered %s", name, resp.Status)
	}
	limit := f.maxBytes()
	if resp.ContentLength > limit {
		return Result{}, fmt.Errorf("feed: GET %s: %w: Content-Length %d exceeds the limit of %d bytes", name, ErrTooLarge, resp.ContentLength, limit)
	}
	body, err := readLimited(resp.Body, limit)
	if err != nil {
		return Result{}, fmt.Errorf("feed: GET %s: %w", name, err)
	}
	body, err = toUTF8(body, resp.Header.Get("Content-Type"))
	if err != nil {
		return Result{}, fmt.Errorf("feed: GET %s: %w", name, err)
	}

	base := u.String()
	if resp.Request != nil && resp.Request.URL != nil {
		base = resp.Request.URL.String() // after redirects
	}
	res, err := parse(bytes.NewReader(body), base, f.now())
	if err != nil {
		return Result{}, fmt.Errorf("feed: GET %s: %w", name, err)
	}
	res.ETag = headerValue(resp.Header.Get("ETag"))
	res.LastModified = headerValue(resp.Header.Get("Last-Modified"))
	return res, nil
}

// readLimited reads all of r, failing with ErrTooLarge as soon as more than
// limit bytes arrive rather than parsing a truncated feed.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than the limit of %d bytes", ErrTooLarge, limit)
	}
	return body, nil
}

// toUTF8 converts a body whose Content-Type names a charset other than
// UTF-8 when the document does not declare its own encoding (an XML
// declaration with encoding=, which the XML decoder honours itself).
func toUTF8(body []byte, contentType string) ([]byte, error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return body, nil
	}
	label := strings.ToLower(strings.TrimSpace(params["charset"]))
	if label == "" || label == "utf-8" || label == "utf8" || label == "us-ascii" {
		return body, nil
	}
	head := body[:min(len(body), 256)]
	if bytes.HasPrefix(bytes.TrimSpace(head), []byte("<?xml")) && bytes.Contains(head, []byte("encoding=")) {
		return body, nil
	}
	r, err := charset.NewReaderLabel(label, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("unsupported charset %q in Content-Type", label)
	}
	return io.ReadAll(r)
}

// headerValue drops a stored validator that could not be sent back safely
// (control characters, absurd length): a missing validator only costs a
// full fetch.
func headerValue(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 1024 || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return ""
	}
	return v
}
