package web

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

func TestBadTokensAnswerAlike(t *testing.T) {
	e := newEnv(t)
	sub := e.addSub("ann@example.org", subscribers.Confirmed, "daily")
	now := e.clock.Now()
	good := map[subscribers.Purpose]string{}
	for _, p := range []subscribers.Purpose{subscribers.PurposeConfirm, subscribers.PurposeUnsubscribe, subscribers.PurposePreferences, subscribers.PurposeData} {
		good[p] = e.signer.Sign(p, sub.ID, "daily", time.Time{})
	}
	other, _ := subscribers.NewSigner([]byte(strings.Repeat("x", 40)))
	bad := func(p subscribers.Purpose) map[string]string {
		g := good[p]
		wrong := subscribers.PurposeUnsubscribe
		if p == wrong {
			wrong = subscribers.PurposePreferences
		}
		flip := []byte(g)
		flip[5] ^= 1
		return map[string]string{
			"Forged":       other.Sign(p, sub.ID, "daily", time.Time{}),
			"Tampered":     string(flip),
			"Expired":      e.signer.Sign(p, sub.ID, "daily", now.Add(-time.Second)),
			"OtherPurpose": e.signer.Sign(wrong, sub.ID, "daily", time.Time{}),
			"Unknown":      e.signer.Sign(p, "00112233445566778899aabbccddeeff", "daily", time.Time{}),
			"Garbage":      "x",
			"Long":         strings.Repeat("A", 3000) + "." + strings.Repeat("B", 27),
			"Email":        "ann@example.org",
		}
	}
	endpoints := []struct {
		method, path string
		p            subscribers.Purpose
	}{
		{"GET", "/confirm/%s", subscribers.PurposeConfirm},
		{"GET", "/unsubscribe/%s", subscribers.PurposeUnsubscribe},
		{"POST", "/unsubscribe/%s", subscribers.PurposeUnsubscribe},
		{"GET", "/preferences/%s", subscribers.PurposePreferences},
		{"POST", "/preferences/%s", subscribers.PurposePreferences},
		{"GET", "/data/%s", subscribers.PurposeData},
		{"GET", "/data/%s/export", subscribers.PurposeData},
		{"POST", "/data/%s/delete", subscribers.PurposeData},
	}
	for _, ep := range endpoints {
		var ref *resp
		for name, tok := range bad(ep.p) {
			path := strings.Replace(ep.path, "%s", tok, 1)
			var r resp
			if ep.method == "GET" {
				r = e.get(path)
			} else {
				r = e.postForm(path, url.Values{"confirm": {"yes"}, "frequency": {"daily"}, "timezone": {"UTC"}, "send_hour": {"-1"}})
			}
			if r.status != 400 || !strings.Contains(r.body, "This link does not work") {
				t.Errorf("%s %s with %s token: %d", ep.method, ep.path, name, r.status)
			}
			if ref == nil {
				ref = &r
			} else if r.body != ref.body {
				t.Errorf("%s %s with %s token: a different answer", ep.method, ep.path, name)
			}
		}
	}
	if got := e.sub("ann@example.org"); got.StatusOn("daily") != subscribers.Confirmed {
		t.Errorf("bad tokens changed the subscriber: %+v", got)
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	e := newEnv(t)
	t.Run("URLEncoded", func(t *testing.T) {
		sub := e.addSub("u1@example.org", subscribers.Confirmed, "daily", "weekly")
		// A mail provider posts from its own servers: no cookie, no
		// Origin of ours, perhaps a cross-site fetch.
		r := e.do("POST", "/unsubscribe/"+e.token(subscribers.PurposeUnsubscribe, sub, "daily"),
			strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site", "Origin", "https://mail.example")
		if r.status != 200 || !strings.Contains(r.body, "You are unsubscribed") {
			t.Fatalf("%d\n%s", r.status, r.body)
		}
		got := e.sub("u1@example.org")
		if got.StatusOn("daily") != subscribers.Unsubscribed || got.StatusOn("weekly") != subscribers.Confirmed {
			t.Errorf("statuses %+v", got.Lists)
		}
		if r.header.Get("Set-Cookie") != "" {
			t.Error("sets a cookie")
		}
	})
	t.Run("Multipart", func(t *testing.T) {
		sub := e.addSub("u2@example.org", subscribers.Confirmed, "daily")
		body, ct := multipartBody(t, map[string]string{"List-Unsubscribe": "One-Click"})
		r := e.do("POST", "/unsubscribe/"+e.token(subscribers.PurposeUnsubscribe, sub, "daily"), body, "Content-Type", ct)
		if r.status != 200 || e.sub("u2@example.org").StatusOn("daily") != subscribers.Unsubscribed {
			t.Errorf("%d %+v", r.status, e.sub("u2@example.org").Lists)
		}
	})
	t.Run("GetOnlyShowsAPage", func(t *testing.T) {
		sub := e.addSub("u3@example.org", subscribers.Confirmed, "daily")
		tok := e.token(subscribers.PurposeUnsubscribe, sub, "daily")
		r := e.get("/unsubscribe/" + tok)
		if r.status != 200 || !strings.Contains(r.body, `method="post"`) || !strings.Contains(r.body, "The Daily") {
			t.Fatalf("%d\n%s", r.status, r.body)
		}
		if e.sub("u3@example.org").StatusOn("daily") != subscribers.Confirmed {
			t.Error("GET unsubscribed")
		}
		// The page's own button: a same-origin form post.
		if r := e.postForm("/unsubscribe/"+tok, url.Values{"List-Unsubscribe": {"One-Click"}}); r.status != 200 {
			t.Errorf("button: %d", r.status)
		}
		if e.sub("u3@example.org").StatusOn("daily") != subscribers.Unsubscribed {
			t.Error("button did not unsubscribe")
		}
		// Again: same answer, nothing breaks.
		if r := e.postForm("/unsubscribe/"+tok, nil); r.status != 200 {
			t.Errorf("again: %d", r.status)
		}
	})
	t.Run("Oversized", func(t *testing.T) {
		sub := e.addSub("u4@example.org", subscribers.Confirmed, "daily")
		r := e.do("POST", "/unsubscribe/"+e.token(subscribers.PurposeUnsubscribe, sub, "daily"),
			strings.NewReader("List-Unsubscribe=One-Click&x="+strings.Repeat("a", 2*MaxFormBytes)), "Content-Type", "application/x-www-form-urlencoded")
		if r.status != 413 {
			t.Errorf("%d", r.status)
		}
	})
}

func TestPreferences(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	if _, _, err := e.st.UpsertArticles([]digest.Article{
		{ID: "a1", Link: "https://gazette.example/a1", Title: "Tide", Categories: []string{"Harbour", "Weather"}, Published: now.Add(-time.Hour)},
		{ID: "a2", Link: "https://gazette.example/a2", Title: "Rain", Categories: []string{"Weather"}, Published: now.Add(-2 * time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	sub := e.addSub("pat@example.org", subscribers.Confirmed, "daily")
	path := "/preferences/" + e.token(subscribers.PurposePreferences, sub, "daily")
	r := e.get(path)
	if r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	for _, want := range []string{`value="daily" checked`, `value="weekly">`, `value="Harbour"`, `value="Weather"`, `data-from-browser="1"`, `<option value="Europe/Paris">`, `<option value="7">07:00</option>`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("preferences page lacks %s", want)
		}
	}
	good := url.Values{"lists": {"weekly"}, "frequency": {"weekly"}, "timezone": {"Europe/Paris"}, "send_hour": {"7"}, "topics": {"Harbour", "Evil<script>"}}
	for name, change := range map[string][2]string{
		"BadZone":      {"timezone", "Mars/Olympus"},
		"BadHour":      {"send_hour", "25"},
		"BadFrequency": {"frequency", "hourly"},
	} {
		v := url.Values{}
		for k, vs := range good {
			v[k] = vs
		}
		v.Set(change[0], change[1])
		if r := e.postForm(path, v); r.status != 400 {
			t.Errorf("%s: %d", name, r.status)
		}
	}
	if got := e.sub("pat@example.org"); got.Timezone != "" || got.StatusOn("daily") != subscribers.Confirmed {
		t.Fatalf("refused posts changed the subscriber: %+v", got)
	}
	cross := e.do("POST", path, strings.NewReader(good.Encode()), "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site")
	if cross.status != 403 {
		t.Errorf("cross-site post: %d", cross.status)
	}
	r = e.postForm(path, good)
	if r.status != 200 || !strings.Contains(r.body, "Your preferences are saved") {
		t.Fatalf("%d\n%s", r.status, r.body)
	}
	got := e.sub("pat@example.org")
	if got.StatusOn("daily") != subscribers.Unsubscribed || got.StatusOn("weekly") != subscribers.Confirmed ||
		got.Frequency != "weekly" || got.Timezone != "Europe/Paris" || got.SendHour != 7 ||
		len(got.Topics) != 1 || got.Topics[0] != "Harbour" {
		t.Errorf("after save: %+v", got)
	}
	if !strings.Contains(r.body, `<option value="Europe/Paris" selected>`) || strings.Contains(r.body, "data-from-browser") {
		t.Error("the saved page does not show the saved zone")
	}
}

var dataLinkRe = regexp.MustCompile(`href="(/data/[A-Za-z0-9_.-]+)"`)

func TestOwnDataExportAndDelete(t *testing.T) {
	e := newEnv(t)
	sub := e.addSub("del@example.org", subscribers.Confirmed, "daily")
	prefs := e.get("/preferences/" + e.token(subscribers.PurposePreferences, sub, "daily"))
	m := dataLinkRe.FindStringSubmatch(prefs.body)
	if m == nil {
		t.Fatalf("no data link on the preferences page")
	}
	page := e.get(m[1])
	if page.status != 200 || !strings.Contains(page.body, "/export") {
		t.Fatalf("data page: %d", page.status)
	}
	ex := e.get(m[1] + "/export")
	if ex.status != 200 || !strings.Contains(ex.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", ex.status, ex.header)
	}
	var out struct {
		Subscriber subscribers.Subscriber `json:"subscriber"`
	}
	if err := json.Unmarshal([]byte(ex.body), &out); err != nil || out.Subscriber.Email != "del@example.org" || out.Subscriber.StatusOn("daily") != subscribers.Confirmed {
		t.Fatalf("export: %v %+v", err, out)
	}
	if r := e.postForm(m[1]+"/delete", nil); r.status != 400 {
		t.Errorf("delete without the box ticked: %d", r.status)
	}
	e.sub("del@example.org")
	if r := e.do("POST", m[1]+"/delete", strings.NewReader("confirm=yes"), "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site"); r.status != 403 {
		t.Errorf("cross-site delete: %d", r.status)
	}
	if r := e.postForm(m[1]+"/delete", url.Values{"confirm": {"yes"}}); r.status != 200 {
		t.Fatalf("delete: %d", r.status)
	}
	if _, err := e.st.GetSubscriber("del@example.org"); err == nil {
		t.Error("still stored after deletion")
	}
	if r := e.get(m[1] + "/export"); r.status != 400 {
		t.Errorf("export after deletion: %d", r.status)
	}
}
