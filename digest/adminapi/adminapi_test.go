package adminapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/subscribers"
)

const testToken = "test-token-0123456789"

func start(t *testing.T) (*boltstore.Store, *httptest.Server, *Client) {
	return startWith(t, 0)
}

func startWith(t *testing.T, maxBody int64) (*boltstore.Store, *httptest.Server, *Client) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "nd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	h, err := (&Server{Service: Direct{st}, Token: testToken, DBPath: st.Path(), MaxBody: maxBody}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return st, ts, &Client{BaseURL: ts.URL, Token: testToken}
}

func TestAuth(t *testing.T) {
	_, ts, _ := start(t)
	for name, hdr := range map[string]string{
		"None":      "",
		"Wrong":     "Bearer test-token-0123456788",
		"Prefix":    "Bearer test-token",
		"Longer":    "Bearer " + testToken + "x",
		"NotBearer": "Basic " + testToken,
		"Bare":      testToken,
	} {
		req, _ := http.NewRequest("GET", ts.URL+"/api/lists", nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d", name, res.StatusCode)
		}
	}
	bad := &Client{BaseURL: ts.URL, Token: "nope-nope-nope-nope"}
	_, err := bad.Lists()
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(err.Error(), "NEWSDIGEST_ADMIN_TOKEN") {
		t.Errorf("client with a wrong token: %v", err)
	}
	if _, err := (&Server{Service: Direct{}, Token: "short"}).Handler(); err == nil {
		t.Error("a short token was accepted")
	}
}

func TestClientMatchesDirect(t *testing.T) {
	st, _, c := start(t)
	d := Direct{st}
	l := subscribers.List{Name: "daily", Title: "The Daily", From: "Gazette <d@gazette.example>", TopCount: 3}
	if err := c.PutList(l); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetList("daily")
	want, _ := d.GetList("daily")
	if err != nil || got.Title != want.Title || got.TopCount != 3 || !got.Created.Equal(want.Created) {
		t.Errorf("GetList: %+v %v", got, err)
	}
	if err := c.PutList(subscribers.List{Name: "Bad Name", From: "x@example.org"}); err == nil || !strings.Contains(err.Error(), "list name") {
		t.Errorf("bad list: %v", err)
	}
	_, err = c.GetList("nope")
	_, derr := d.GetList("nope")
	if !errors.Is(err, boltstore.ErrNotFound) || err.Error() != derr.Error() {
		t.Errorf("missing list: client %v, direct %v", err, derr)
	}

	sub := subscribers.Subscriber{Email: "Ann@Example.org", Name: "Ann", SendHour: -1, Frequency: "daily",
		Lists: map[string]subscribers.Membership{"daily": {Status: subscribers.Confirmed}}}
	if err := c.AddSubscriber(sub); err != nil {
		t.Fatal(err)
	}
	if err := c.AddSubscriber(sub); !errors.Is(err, boltstore.ErrExists) {
		t.Errorf("second add: %v", err)
	}
	if _, err := c.GetSubscriber("not an address"); !errors.Is(err, subscribers.ErrInvalidEmail) {
		t.Errorf("bad address: %v", err)
	}
	s, err := c.GetSubscriber("ann@example.org")
	if err != nil || s.ID == "" || s.SendHour != -1 {
		t.Fatalf("GetSubscriber: %+v %v", s, err)
	}
	a, u, k, err := c.UpsertSubscribers([]subscribers.Row{
		{Subscriber: subscribers.Subscriber{Email: "bob@example.org", Frequency: "daily", SendHour: -1}},
		{Subscriber: subscribers.Subscriber{Email: "ann@example.org", Name: "Ann B"}, Given: subscribers.GivenName},
	}, true)
	if err != nil || a != 1 || u != 1 || k != 0 {
		t.Errorf("UpsertSubscribers: %d %d %d %v", a, u, k, err)
	}
	n, err := c.CountSubscribers("daily", subscribers.Confirmed)
	if err != nil || n != 1 {
		t.Errorf("CountSubscribers: %d %v", n, err)
	}
	page, err := c.Subscribers(boltstore.SubscriberQuery{Limit: 1, After: "ann@example.org"})
	if err != nil || len(page) != 1 || page[0].Email != "bob@example.org" {
		t.Errorf("Subscribers page: %+v %v", page, err)
	}
	if err := c.DeleteSubscriber("bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSubscriber("bob@example.org"); !errors.Is(err, boltstore.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}

	f := digest.Feed{ID: digest.FeedID("https://gazette.example/feed.xml"), URL: "https://gazette.example/feed.xml", Added: time.Now()}
	if err := c.PutFeed(f); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetFeed(f.URL); err != nil || got.ID != f.ID {
		t.Errorf("GetFeed by URL: %+v %v", got, err)
	}
	now := time.Now()
	added, merged, err := c.UpsertArticles([]digest.Article{
		{ID: digest.ArticleID("g1", ""), GUID: "g1", Link: "https://gazette.example/1", Title: "One", Published: now},
		{ID: digest.ArticleID("g2", ""), GUID: "g2", Link: "https://gazette.example/2", Title: "Two", Published: now},
	})
	if err != nil || added != 2 || merged != 0 {
		t.Fatalf("UpsertArticles: %d %d %v", added, merged, err)
	}
	upd, missing, err := c.SetViews(map[string]int64{"g1": 40, "nope": 3})
	if err != nil || upd != 1 || len(missing) != 1 {
		t.Errorf("SetViews: %d %v %v", upd, missing, err)
	}
	yes, boost := true, 2.5
	art, err := c.EditArticle(digest.ArticleID("g1", "")[:8], ArticleEdit{Pinned: &yes, Boost: &boost})
	if err != nil || !art.Pinned || art.Boost != 2.5 || art.Views != 40 {
		t.Errorf("EditArticle: %+v %v", art, err)
	}
	bad := -1.0
	if _, err := c.EditArticle(art.ID, ArticleEdit{Boost: &bad}); err == nil {
		t.Error("a negative boost was accepted")
	}
	as, err := c.Articles(now.Add(-time.Hour))
	das, _ := d.Articles(now.Add(-time.Hour))
	if err != nil || len(as) != 2 || len(das) != 2 || as[0].ID != das[0].ID {
		t.Errorf("Articles: %d %v", len(as), err)
	}
	if err := c.DeleteList("daily"); err != nil {
		t.Fatal(err)
	}
	if ls, err := c.Lists(); err != nil || ls != nil && len(ls) != 0 {
		t.Errorf("Lists after delete: %+v %v", ls, err)
	}
}

func TestBodyLimitAndUnknownRoute(t *testing.T) {
	_, ts, _ := startWith(t, 1<<16)
	req, _ := http.NewRequest("POST", ts.URL+"/api/articles", strings.NewReader("["+strings.Repeat(`{"title":"x"},`, 1<<13)+"{}]"))
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Errorf("oversized body: %d", res.StatusCode)
	}
	req, _ = http.NewRequest("GET", ts.URL+"/api/nothing", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("unknown route: %d", res.StatusCode)
	}
}
