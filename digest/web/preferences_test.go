package web

import (
	"net/url"
	"strings"
	"testing"

	"newsdigest/subscribers"
)

// TestPreferencesTurnOn checks what ticking a box on the preferences page
// does to a list the person is not confirmed on: a suppressed address and
// a list complained about stay as they are, and the page says why; an
// unsubscribed or bounced list (address not suppressed) is confirmed with
// the consent recorded.
func TestPreferencesTurnOn(t *testing.T) {
	e := newEnv(t)
	if err := e.st.PutList(subscribers.List{Name: "monthly", Title: "The Monthly", From: "Gazette <monthly@gazette.example>"}); err != nil {
		t.Fatal(err)
	}
	form := func(shown string, lists ...string) url.Values {
		v := url.Values{"lists": lists, "frequency": {"daily"}, "timezone": {"UTC"}, "send_hour": {"-1"}}
		if shown != "-" {
			v.Set("shown", shown)
		}
		return v
	}
	noConsent := func(t *testing.T, got subscribers.Subscriber) {
		t.Helper()
		if got.Consent != (subscribers.Consent{}) {
			t.Errorf("consent %+v: want none recorded", got.Consent)
		}
	}

	t.Run("SuppressedUnchanged", func(t *testing.T) {
		sub := e.addSub("sup@example.org", subscribers.Confirmed, "daily")
		if _, err := e.st.UpdateSubscriber("sup@example.org", func(s *subscribers.Subscriber) error {
			s.SetStatus("weekly", subscribers.Bounced, e.clock.Now())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := e.st.Suppress("sup@example.org", "bounce 5.1.1", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		path := "/preferences/" + e.token(subscribers.PurposePreferences, sub, "daily")
		page := e.get(path)
		for _, want := range []string{"The Weekly (not available)", "The Monthly (not available)", "cannot be turned on from this page"} {
			if page.status != 200 || !strings.Contains(page.body, want) {
				t.Errorf("page: %d, lacks %q", page.status, want)
			}
		}
		if strings.Contains(page.body, "The Daily (not available)") {
			t.Error("the confirmed list is marked not available")
		}
		// Ticks weekly (bounced) and monthly (never joined), unticks daily.
		r := e.postForm(path, form("daily", "weekly", "monthly"))
		if r.status != 200 || !strings.Contains(r.body, "Your preferences are saved") ||
			!strings.Contains(r.body, "Not turned on: The Monthly and The Weekly.") {
			t.Fatalf("%d\n%s", r.status, r.body)
		}
		got := e.sub("sup@example.org")
		if got.StatusOn("weekly") != subscribers.Bounced || got.StatusOn("monthly") != "" || got.StatusOn("daily") != subscribers.Unsubscribed {
			t.Errorf("lists %+v: want weekly bounced, monthly never joined, daily unsubscribed", got.Lists)
		}
		noConsent(t, got)
		// A post without the shown field (a script) changes nothing either.
		if r := e.postForm(path, form("-", "daily", "weekly")); r.status != 200 || !strings.Contains(r.body, "Not turned on: The Daily and The Weekly.") {
			t.Errorf("post without shown: %d", r.status)
		}
		if got := e.sub("sup@example.org"); got.StatusOn("daily") != subscribers.Unsubscribed || got.StatusOn("weekly") != subscribers.Bounced {
			t.Errorf("post without shown: lists %+v", got.Lists)
		}
	})

	t.Run("ComplainedUnchanged", func(t *testing.T) {
		sub := e.addSub("cmp@example.org", subscribers.Complained, "weekly")
		path := "/preferences/" + e.token(subscribers.PurposePreferences, sub, "weekly")
		if page := e.get(path); !strings.Contains(page.body, "The Weekly (not available)") || strings.Contains(page.body, "The Daily (not available)") {
			t.Errorf("page: weekly not marked, or daily marked")
		}
		r := e.postForm(path, form("", "weekly"))
		if r.status != 200 || !strings.Contains(r.body, "Not turned on: The Weekly.") {
			t.Fatalf("%d\n%s", r.status, r.body)
		}
		got := e.sub("cmp@example.org")
		if got.StatusOn("weekly") != subscribers.Complained {
			t.Errorf("lists %+v: want weekly still complained", got.Lists)
		}
		noConsent(t, got)
	})

	for _, st := range []subscribers.Status{subscribers.Unsubscribed, subscribers.Bounced} {
		t.Run(string(st)+"Confirmed", func(t *testing.T) {
			email := string(st) + "@example.org"
			sub := e.addSub(email, st, "weekly")
			e.clock.Add(1e9)
			path := "/preferences/" + e.token(subscribers.PurposePreferences, sub, "weekly")
			if page := e.get(path); strings.Contains(page.body, "not available") {
				t.Error("page marks a list not available")
			}
			r := e.postForm(path, form("", "weekly"))
			if r.status != 200 || !strings.Contains(r.body, "Your preferences are saved") || strings.Contains(r.body, "Not turned on") {
				t.Fatalf("%d\n%s", r.status, r.body)
			}
			got := e.sub(email)
			if m := got.Lists["weekly"]; m.Status != subscribers.Confirmed || !m.Since.Equal(e.clock.Now()) {
				t.Errorf("weekly %+v: want confirmed now", m)
			}
			if c := got.Consent; c.Source != "preferences" || c.IP != "127.0.0.1" || !c.Time.Equal(e.clock.Now()) {
				t.Errorf("consent %+v: want source preferences, IP 127.0.0.1, time now", c)
			}
		})
	}
}
