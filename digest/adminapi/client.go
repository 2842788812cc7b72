package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/schedule"
	"newsdigest/subscribers"
)

// Client reaches a daemon's admin API. It implements Service, so the CLI
// uses it exactly as it uses Direct.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8081
	Token   string
	HTTP    *http.Client // nil: a client with a 60 s timeout
	// Context bounds every request; nil means context.Background().
	Context context.Context
}

var _ Service = (*Client)(nil)

// APIError is an error answer of the API. It wraps the store sentinel its
// code stands for, so errors.Is(err, boltstore.ErrNotFound) works on both
// sides of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Unwrap returns the sentinel of the error's code, if any.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case "not_found":
		return boltstore.ErrNotFound
	case "exists":
		return boltstore.ErrExists
	case "ambiguous":
		return boltstore.ErrAmbiguous
	case "busy":
		return ErrBusy
	case "invalid":
		if strings.Contains(e.Message, subscribers.ErrInvalidEmail.Error()) {
			return subscribers.ErrInvalidEmail
		}
	}
	return nil
}

var defaultHTTP = &http.Client{Timeout: 60 * time.Second}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (unless out is nil).
func (c *Client) do(method, path string, query url.Values, in, out any) error {
	ctx := c.Context
	if ctx == nil {
		ctx = context.Background()
	}
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin API: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e Error
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("admin API at %s: %s %s: %s", c.BaseURL, method, path, resp.Status)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Error = fmt.Sprintf("admin API at %s refused the token (401): check admin.token / NEWSDIGEST_ADMIN_TOKEN", c.BaseURL)
		}
		return &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("admin API at %s: %s %s: bad answer: %w", c.BaseURL, method, path, err)
	}
	return nil
}

func seg(s string) string { return url.PathEscape(s) }

// Ping checks that the daemon answers and returns what it serves.
func (c *Client) Ping() (Ping, error) {
	var p Ping
	err := c.do(http.MethodGet, "/api/ping", nil, nil, &p)
	return p, err
}

func (c *Client) Lists() ([]subscribers.List, error) {
	var ls []subscribers.List
	return ls, c.do(http.MethodGet, "/api/lists", nil, nil, &ls)
}

func (c *Client) GetList(name string) (subscribers.List, error) {
	var l subscribers.List
	return l, c.do(http.MethodGet, "/api/lists/"+seg(name), nil, nil, &l)
}

// GetListSchedule fetches what the daemon's scheduler last did for the
// list.
func (c *Client) GetListSchedule(list string) (schedule.ListState, error) {
	var st schedule.ListState
	return st, c.do(http.MethodGet, "/api/lists/"+seg(list)+"/schedule", nil, nil, &st)
}

func (c *Client) PutList(l subscribers.List) error {
	return c.do(http.MethodPut, "/api/lists/"+seg(l.Name), nil, l, nil)
}

func (c *Client) DeleteList(name string) error {
	return c.do(http.MethodDelete, "/api/lists/"+seg(name), nil, nil, nil)
}

func (c *Client) CountSubscribers(list string, status subscribers.Status) (int, error) {
	var n Count
	q := url.Values{}
	if list != "" {
		q.Set("list", list)
	}
	if status != "" {
		q.Set("status", string(status))
	}
	return n.Count, c.do(http.MethodGet, "/api/subscribers/count", q, nil, &n)
}

func (c *Client) Subscribers(sq boltstore.SubscriberQuery) ([]subscribers.Subscriber, error) {
	q := url.Values{}
	if sq.List != "" {
		q.Set("list", sq.List)
	}
	if sq.Status != "" {
		q.Set("status", string(sq.Status))
	}
	if sq.After != "" {
		q.Set("after", sq.After)
	}
	if sq.Limit != 0 {
		q.Set("limit", strconv.Itoa(sq.Limit))
	}
	var subs []subscribers.Subscriber
	if err := c.do(http.MethodGet, "/api/subscribers", q, nil, &subs); err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		return nil, nil // as the store answers
	}
	return subs, nil
}

func (c *Client) GetSubscriber(email string) (subscribers.Subscriber, error) {
	var s subscribers.Subscriber
	return s, c.do(http.MethodGet, "/api/subscribers/"+seg(email), nil, nil, &s)
}

func (c *Client) AddSubscriber(sub subscribers.Subscriber) error {
	return c.do(http.MethodPost, "/api/subscribers", nil, sub, nil)
}

func (c *Client) PutSubscriber(sub subscribers.Subscriber) error {
	return c.do(http.MethodPut, "/api/subscribers/"+seg(sub.Email), nil, sub, nil)
}

func (c *Client) DeleteSubscriber(email string) error {
	return c.do(http.MethodDelete, "/api/subscribers/"+seg(email), nil, nil, nil)
}

func (c *Client) UpsertSubscribers(batch []subscribers.Row, update bool) (added, updated, skipped int, err error) {
	req := ImportRequest{Update: update, Rows: make([]ImportRow, 0, len(batch))}
	for _, r := range batch {
		if r.Err != nil {
			return 0, 0, 0, errors.New("adminapi: a rejected row cannot be imported")
		}
		req.Rows = append(req.Rows, ImportRow{Line: r.Line, Subscriber: r.Subscriber, Given: r.Given})
	}
	var res ImportResult
	err = c.do(http.MethodPost, "/api/subscribers/import", nil, req, &res)
	return res.Added, res.Updated, res.Skipped, err
}

func (c *Client) Feeds() ([]digest.Feed, error) {
	var fs []digest.Feed
	if err := c.do(http.MethodGet, "/api/feeds", nil, nil, &fs); err != nil || len(fs) == 0 {
		return nil, err
	}
	return fs, nil
}

func (c *Client) GetFeed(idOrURL string) (digest.Feed, error) {
	var f digest.Feed
	return f, c.do(http.MethodGet, "/api/feeds/"+seg(idOrURL), nil, nil, &f)
}

func (c *Client) PutFeed(f digest.Feed) error {
	return c.do(http.MethodPut, "/api/feeds/"+seg(f.ID), nil, f, nil)
}

func (c *Client) DeleteFeed(idOrURL string) error {
	return c.do(http.MethodDelete, "/api/feeds/"+seg(idOrURL), nil, nil, nil)
}

func (c *Client) Articles(since time.Time) ([]digest.Article, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	var as []digest.Article
	if err := c.do(http.MethodGet, "/api/articles", q, nil, &as); err != nil || len(as) == 0 {
		return nil, err
	}
	return as, nil
}

func (c *Client) GetArticle(idOrPrefix string) (digest.Article, error) {
	var a digest.Article
	return a, c.do(http.MethodGet, "/api/articles/"+seg(idOrPrefix), nil, nil, &a)
}

func (c *Client) UpsertArticles(as []digest.Article) (added, merged int, err error) {
	var res UpsertResult
	err = c.do(http.MethodPost, "/api/articles", nil, orEmpty(as), &res)
	return res.Added, res.Merged, err
}

func (c *Client) SetViews(views map[string]int64) (updated int, missing []string, err error) {
	if views == nil {
		views = map[string]int64{}
	}
	var res ViewsResult
	if err := c.do(http.MethodPost, "/api/articles/views", nil, views, &res); err != nil {
		return 0, nil, err
	}
	if len(res.Missing) == 0 {
		res.Missing = nil
	}
	return res.Updated, res.Missing, nil
}

func (c *Client) EditArticle(idOrPrefix string, e ArticleEdit) (digest.Article, error) {
	var a digest.Article
	return a, c.do(http.MethodPatch, "/api/articles/"+seg(idOrPrefix), nil, e, &a)
}
