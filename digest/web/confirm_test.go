package web

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"newsdigest/subscribers"
)

// signUpLink posts the sign-up form for email and lists and returns the
// confirmation link of the email that answers it, or "" when none came.
func (e *env) signUpLink(email string, lists ...string) string {
	e.t.Helper()
	before := len(e.waitMail())
	if r := e.postForm("/subscribe", url.Values{"email": {email}, "lists": lists}); r.status != 200 {
		e.t.Fatalf("sign-up: %d\n%s", r.status, r.body)
	}
	msgs := e.waitMail()
	if len(msgs) == before {
		return ""
	}
	if len(msgs) != before+1 || msgs[len(msgs)-1].To[0] != email {
		e.t.Fatalf("sign-up of %s: %d new emails", email, len(msgs)-before)
	}
	return confirmLink(e.t, parseMail(e.t, msgs[len(msgs)-1].Data))
}

// record is the stored subscriber as JSON, to compare whole.
func (e *env) record(email string) string {
	e.t.Helper()
	b, err := json.Marshal(e.sub(email))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// welcomes counts the welcome emails received.
func (e *env) welcomes() int {
	n := 0
	for _, m := range e.waitMail() {
		if strings.Contains(parseMail(e.t, m.Data).header.Get("Subject"), "Welcome") {
			n++
		}
	}
	return n
}

// staleLink checks that opening link (GET and HEAD) leaves email's record
// as it is and answers the page that says the link no longer applies.
func (e *env) staleLink(link, email string) {
	e.t.Helper()
	before, welcomes := e.record(email), e.welcomes()
	e.clock.Add(time.Minute)
	if r := e.do("HEAD", link, nil); r.status != 200 {
		e.t.Errorf("HEAD: %d", r.status)
	}
	r := e.get(link)
	if r.status != 200 || !strings.Contains(r.body, "This link no longer applies") ||
		!strings.Contains(r.body, `href="/subscribe"`) || strings.Contains(r.body, "You are subscribed") {
		e.t.Errorf("old link: %d\n%s", r.status, r.body)
	}
	if after := e.record(email); after != before {
		e.t.Errorf("old link changed the subscriber:\nbefore %s\nafter  %s", before, after)
	}
	if n := e.welcomes(); n != welcomes {
		e.t.Errorf("old link sent %d welcome emails", n-welcomes)
	}
}

// TestOldConfirmLinkDoesNotResubscribe: a confirmation link used, then
// the person leaves (one-click, admin, bounce, complaint, suppression):
// the link, still within its life, changes nothing.
func TestOldConfirmLinkDoesNotResubscribe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave func(e *env, email string)
	}{
		{"WebUnsubscribe", func(e *env, email string) {
			tok := e.token(subscribers.PurposeUnsubscribe, e.sub(email), "")
			r := e.do("POST", "/unsubscribe/"+tok, strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded")
			if r.status != 200 || !strings.Contains(r.body, "You are unsubscribed") {
				t.Fatalf("unsubscribe: %d", r.status)
			}
		}},
		{"AdminUnsubscribe", func(e *env, email string) { // as `subscribers unsubscribe` does
			s := e.sub(email)
			s.SetStatus("daily", subscribers.Unsubscribed, e.clock.Now())
			if err := e.st.PutSubscriber(s); err != nil {
				t.Fatal(err)
			}
		}},
		{"Bounced", func(e *env, email string) {
			if _, err := e.st.UpdateSubscriber(email, func(s *subscribers.Subscriber) error {
				s.SetStatus("daily", subscribers.Bounced, e.clock.Now())
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := e.st.Suppress(email, "bounce 5.1.1", e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{"Complained", func(e *env, email string) {
			if _, err := e.st.UpdateSubscriber(email, func(s *subscribers.Subscriber) error {
				s.SetStatus("daily", subscribers.Complained, e.clock.Now())
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			const kim = "kim@example.org"
			link := e.signUpLink(kim, "daily")
			if r := e.get(link); r.status != 200 || !strings.Contains(r.body, "You are subscribed") {
				t.Fatalf("confirm: %d", r.status)
			}
			e.clock.Add(time.Hour)
			tc.leave(e, kim)
			e.staleLink(link, kim)
			if st := e.sub(kim).StatusOn("daily"); st == subscribers.Confirmed {
				t.Errorf("status %s", st)
			}
		})
	}
	t.Run("PendingButSuppressed", func(t *testing.T) {
		e := newEnv(t)
		link := e.signUpLink("sam@example.org", "daily")
		if err := e.st.Suppress("sam@example.org", "complaint", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.staleLink(link, "sam@example.org")
		if st := e.sub("sam@example.org").StatusOn("daily"); st != subscribers.Pending {
			t.Errorf("status %s", st)
		}
	})
}

// TestConfirmHeadChangesNothing: a mail scanner's HEAD on the link (or on
// any other link of ours) neither confirms, unsubscribes nor sends mail.
func TestConfirmHeadChangesNothing(t *testing.T) {
	e := newEnv(t)
	const kim = "kim@example.org"
	link := e.signUpLink(kim, "daily")
	before := e.record(kim)
	e.clock.Add(time.Minute)
	r := e.do("HEAD", link, nil)
	if r.status != 200 || r.body != "" {
		t.Errorf("HEAD: %d %q", r.status, r.body)
	}
	if got := e.record(kim); got != before {
		t.Fatalf("HEAD changed the subscriber:\nbefore %s\nafter  %s", before, got)
	}
	if n := e.welcomes(); n != 0 {
		t.Errorf("HEAD sent %d welcome emails", n)
	}
	// A bad token answers HEAD like GET.
	if r := e.do("HEAD", link[:len(link)-3]+"AAA", nil); r.status != 400 {
		t.Errorf("HEAD with a bad token: %d", r.status)
	}
	// GET, the link's contract, still confirms.
	if r := e.get(link); r.status != 200 || !strings.Contains(r.body, "You are subscribed") || e.sub(kim).StatusOn("daily") != subscribers.Confirmed {
		t.Fatalf("GET: %d %s", r.status, e.sub(kim).StatusOn("daily"))
	}
	if n := e.welcomes(); n != 1 {
		t.Errorf("%d welcome emails", n)
	}

	// Every other link of ours, HEAD or GET where GET is only a page.
	sub := e.sub(kim)
	before = e.record(kim)
	for _, p := range []string{
		"/unsubscribe/" + e.token(subscribers.PurposeUnsubscribe, sub, "daily"),
		"/unsubscribe/" + e.token(subscribers.PurposeUnsubscribe, sub, ""),
		"/preferences/" + e.token(subscribers.PurposePreferences, sub, "daily"),
		"/data/" + e.token(subscribers.PurposeData, sub, ""),
		"/data/" + e.token(subscribers.PurposeData, sub, "") + "/export",
	} {
		for _, m := range []string{"HEAD", "GET"} {
			if r := e.do(m, p, nil); r.status != 200 {
				t.Errorf("%s %s: %d", m, p, r.status)
			}
		}
	}
	// HEAD on a route that only POST acts on.
	if r := e.do("HEAD", "/data/"+e.token(subscribers.PurposeData, sub, "")+"/delete", nil); r.status == 200 {
		t.Errorf("HEAD on delete: %d", r.status)
	}
	if got := e.record(kim); got != before {
		t.Errorf("a HEAD or GET changed the subscriber:\nbefore %s\nafter  %s", before, got)
	}
}

// TestResignupConfirms: after leaving, signing up again works with the
// new link; the link of the earlier sign-up does not confirm the new one.
func TestResignupConfirms(t *testing.T) {
	t.Run("AfterWebUnsubscribe", func(t *testing.T) {
		e := newEnv(t)
		const kim = "kim@example.org"
		old := e.signUpLink(kim, "daily")
		e.clock.Add(time.Minute)
		e.get(old)
		e.clock.Add(time.Minute)
		tok := e.token(subscribers.PurposeUnsubscribe, e.sub(kim), "daily")
		if r := e.do("POST", "/unsubscribe/"+tok, strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
			t.Fatalf("unsubscribe: %d", r.status)
		}
		// Minutes later, within the day's one confirmation email: the
		// unsubscribe lifted that limit, so a new link comes.
		e.clock.Add(5 * time.Minute)
		fresh := e.signUpLink(kim, "daily")
		if fresh == "" || fresh == old {
			t.Fatalf("no new confirmation link after unsubscribing (%q)", fresh)
		}
		if st := e.sub(kim).StatusOn("daily"); st != subscribers.Pending {
			t.Fatalf("after sign-up: %s", st)
		}
		// Someone else may have typed the address in: only the new
		// email's link is that person's consent.
		e.staleLink(old, kim)
		e.clock.Add(time.Minute)
		if r := e.get(fresh); r.status != 200 || !strings.Contains(r.body, "You are subscribed") {
			t.Fatalf("new link: %d\n%s", r.status, r.body)
		}
		got := e.sub(kim)
		if got.StatusOn("daily") != subscribers.Confirmed || !got.Consent.Time.Equal(e.clock.Now()) {
			t.Errorf("after the new link: %s, consent %+v", got.StatusOn("daily"), got.Consent)
		}
		// Now confirmed: the old link answers like any repeat visit.
		before := e.record(kim)
		if r := e.get(old); r.status != 200 || !strings.Contains(r.body, "You are subscribed") || e.record(kim) != before {
			t.Errorf("old link once confirmed again: %d", r.status)
		}
	})
	t.Run("AfterAdminUnsubscribe", func(t *testing.T) {
		e := newEnv(t)
		const kim = "kim@example.org"
		old := e.signUpLink(kim, "daily")
		e.get(old)
		e.clock.Add(time.Hour)
		s := e.sub(kim)
		s.SetStatus("daily", subscribers.Unsubscribed, e.clock.Now())
		if err := e.st.PutSubscriber(s); err != nil {
			t.Fatal(err)
		}
		// Within the day: pending again, no new email, and the old link
		// does not stand in for one.
		e.clock.Add(time.Hour)
		if l := e.signUpLink(kim, "daily"); l != "" {
			t.Fatalf("a second confirmation email within the day: %s", l)
		}
		if st := e.sub(kim).StatusOn("daily"); st != subscribers.Pending {
			t.Fatalf("after sign-up: %s", st)
		}
		e.staleLink(old, kim)
		e.clock.Add(24 * time.Hour)
		fresh := e.signUpLink(kim, "daily")
		if fresh == "" {
			t.Fatal("no confirmation email a day later")
		}
		if r := e.get(fresh); r.status != 200 || e.sub(kim).StatusOn("daily") != subscribers.Confirmed {
			t.Errorf("new link: %d %s", r.status, e.sub(kim).StatusOn("daily"))
		}
	})
	t.Run("AfterBounceNotSuppressed", func(t *testing.T) {
		e := newEnv(t)
		const kim = "kim@example.org"
		old := e.signUpLink(kim, "daily")
		e.get(old)
		e.clock.Add(time.Hour)
		if _, err := e.st.UpdateSubscriber(kim, func(s *subscribers.Subscriber) error {
			s.SetStatus("daily", subscribers.Bounced, e.clock.Now())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(25 * time.Hour)
		fresh := e.signUpLink(kim, "daily")
		if fresh == "" {
			t.Fatal("no confirmation email")
		}
		e.staleLink(old, kim)
		if r := e.get(fresh); r.status != 200 || e.sub(kim).StatusOn("daily") != subscribers.Confirmed {
			t.Errorf("new link: %d %s", r.status, e.sub(kim).StatusOn("daily"))
		}
	})
	t.Run("TwoLinksOneSignup", func(t *testing.T) {
		// Two lists, one left: the link confirms what is still pending
		// and says only that.
		e := newEnv(t)
		const kim = "kim@example.org"
		link := e.signUpLink(kim, "daily", "weekly")
		if _, err := e.st.UpdateSubscriber(kim, func(s *subscribers.Subscriber) error {
			s.SetStatus("weekly", subscribers.Unsubscribed, e.clock.Now().Add(time.Second))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		r := e.get(link)
		if r.status != 200 || !strings.Contains(r.body, "The Daily") || strings.Contains(r.body, "The Weekly") {
			t.Errorf("%d\n%s", r.status, r.body)
		}
		got := e.sub(kim)
		if got.StatusOn("daily") != subscribers.Confirmed || got.StatusOn("weekly") != subscribers.Unsubscribed {
			t.Errorf("statuses %+v", got.Lists)
		}
	})
}
