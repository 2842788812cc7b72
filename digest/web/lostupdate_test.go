package web

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"newsdigest/digest/boltstore"
	"newsdigest/subscribers"
)

// hookStore runs a concurrent change, once, at the moment a page is about
// to write a subscriber: after the page has read whatever it read, before
// its write. It runs the change in another goroutine and waits for it to
// commit, so the interleaving that loses an update when a page reads in
// one transaction and writes in another happens every time.
type hookStore struct {
	*boltstore.Store
	at    string // the write method that fires it: "update" or "add"
	fired atomic.Bool
	hook  func()
}

func (h *hookStore) fire(method string) {
	if h.hook == nil || method != h.at || !h.fired.CompareAndSwap(false, true) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(h.hook)
	wg.Wait()
}

func (h *hookStore) AddSubscriber(sub subscribers.Subscriber) error {
	h.fire("add")
	return h.Store.AddSubscriber(sub)
}

func (h *hookStore) UpdateSubscriber(email string, fn func(*subscribers.Subscriber) error) (subscribers.Subscriber, error) {
	h.fire("update")
	return h.Store.UpdateSubscriber(email, fn)
}

func (h *hookStore) UpdateSubscriberByID(id string, fn func(*subscribers.Subscriber) error) (subscribers.Subscriber, error) {
	h.fire("update")
	return h.Store.UpdateSubscriberByID(id, fn)
}

var _ Store = (*hookStore)(nil)

// newHookEnv is newEnv with the pages' store wrapped in a hookStore.
func newHookEnv(t *testing.T, opts ...envOption) (*env, *hookStore) {
	h := &hookStore{at: "update"}
	e := newEnv(t, append(opts, func(s *Server) {
		h.Store = s.Store.(*boltstore.Store)
		s.Store = h
	})...)
	return e, h
}

// adminAdds is `subscribers add EMAIL --list L` on an existing subscriber.
func (e *env) adminAdds(email, list string) func() {
	return func() {
		row := subscribers.Row{Subscriber: subscribers.Subscriber{Email: email,
			Lists: map[string]subscribers.Membership{list: {Status: subscribers.Confirmed}}}}
		if _, updated, _, err := e.st.UpsertSubscribers([]subscribers.Row{row}, true); err != nil || updated != 1 {
			e.t.Errorf("admin adds %s to %s: %v (%d updated)", email, list, err, updated)
		}
	}
}

// bounceMarks is the bounce processor acting on a hard bounce.
func (e *env) bounceMarks(email string) func() {
	return func() {
		if err := e.st.Suppress(email, "hard bounce 5.1.1", e.clock.Now()); err != nil {
			e.t.Error(err)
		}
		if _, err := e.st.MarkSubscriber(email, nil, subscribers.Bounced, e.clock.Now()); err != nil {
			e.t.Error(err)
		}
	}
}

var shownRe = regexp.MustCompile(`<input type="hidden" name="shown" value="([^"]*)">`)

// TestNoLostUpdate changes a subscriber in the window between what each
// page reads and what it writes, and checks that both changes survive.
func TestNoLostUpdate(t *testing.T) {
	t.Run("ConfirmWhileAdminAddsList", func(t *testing.T) {
		e, h := newHookEnv(t)
		link := e.signUpAndConfirmLink("ann@example.org", "daily")
		h.hook = e.adminAdds("ann@example.org", "weekly")
		if r := e.get(link); r.status != 200 || !strings.Contains(r.body, "You are subscribed") {
			t.Fatalf("confirm: %d", r.status)
		}
		if !h.fired.Load() {
			t.Fatal("the hook did not fire")
		}
		got := e.sub("ann@example.org")
		if got.StatusOn("daily") != subscribers.Confirmed || got.StatusOn("weekly") != subscribers.Confirmed {
			t.Errorf("lists %+v: want daily confirmed by the link and weekly by the admin", got.Lists)
		}
		if got.Consent.Source != sourceJSON || got.Consent.IP == "" {
			t.Errorf("consent %+v", got.Consent)
		}
		if n := len(welcomes(t, e.waitMail())); n != 1 {
			t.Errorf("%d welcome emails, want 1", n)
		}
	})
	t.Run("OneClickUnsubscribeWhileAdminAddsList", func(t *testing.T) {
		e, h := newHookEnv(t)
		sub := e.addSub("bob@example.org", subscribers.Confirmed, "daily")
		h.hook = e.adminAdds("bob@example.org", "weekly")
		r := e.do("POST", "/unsubscribe/"+e.token(subscribers.PurposeUnsubscribe, sub, "daily"),
			strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded")
		if r.status != 200 || !strings.Contains(r.body, "You are unsubscribed") {
			t.Fatalf("unsubscribe: %d", r.status)
		}
		got := e.sub("bob@example.org")
		if !h.fired.Load() || got.StatusOn("daily") != subscribers.Unsubscribed || got.StatusOn("weekly") != subscribers.Confirmed {
			t.Errorf("lists %+v: want daily unsubscribed and weekly confirmed", got.Lists)
		}
	})
	t.Run("UnsubscribeAllWhileBounceMarksThem", func(t *testing.T) {
		e, h := newHookEnv(t)
		sub := e.addSub("cat@example.org", subscribers.Confirmed, "daily", "weekly")
		h.hook = e.bounceMarks("cat@example.org")
		r := e.postForm("/unsubscribe/"+e.token(subscribers.PurposeUnsubscribe, sub, ""), url.Values{"List-Unsubscribe": {"One-Click"}})
		if r.status != 200 || !strings.Contains(r.body, "You are unsubscribed") {
			t.Fatalf("unsubscribe: %d", r.status)
		}
		got := e.sub("cat@example.org")
		if !h.fired.Load() || got.StatusOn("daily") != subscribers.Bounced || got.StatusOn("weekly") != subscribers.Bounced {
			t.Errorf("lists %+v: want both bounced, as the bounce left them", got.Lists)
		}
	})
	t.Run("PreferencesWhileAdminAddsList", func(t *testing.T) {
		e, h := newHookEnv(t)
		sub := e.addSub("dan@example.org", subscribers.Confirmed, "daily")
		path := "/preferences/" + e.token(subscribers.PurposePreferences, sub, "daily")
		page := e.get(path)
		m := shownRe.FindStringSubmatch(page.body)
		if page.status != 200 || m == nil || m[1] != "daily" {
			t.Fatalf("preferences page: %d, shown field %q", page.status, m)
		}
		// The admin adds weekly while the page is open, at the last
		// moment: inside the save's own window between read and write.
		h.hook = e.adminAdds("dan@example.org", "weekly")
		r := e.postForm(path, url.Values{"shown": {m[1]}, "lists": {"daily"}, "frequency": {"weekly"},
			"timezone": {"Europe/Paris"}, "send_hour": {"7"}})
		if r.status != 200 || !strings.Contains(r.body, "Your preferences are saved") {
			t.Fatalf("save: %d", r.status)
		}
		got := e.sub("dan@example.org")
		if !h.fired.Load() || got.StatusOn("daily") != subscribers.Confirmed || got.StatusOn("weekly") != subscribers.Confirmed ||
			got.Timezone != "Europe/Paris" || got.SendHour != 7 || got.Frequency != subscribers.Weekly {
			t.Errorf("after save: %+v: want weekly kept and the form's choices saved", got)
		}
		if !strings.Contains(r.body, `name="shown" value="daily,weekly"`) {
			t.Error("the saved page does not show both lists ticked")
		}
	})
	t.Run("PreferencesWhileBounceMarksThem", func(t *testing.T) {
		e, h := newHookEnv(t)
		sub := e.addSub("eve@example.org", subscribers.Confirmed, "daily")
		path := "/preferences/" + e.token(subscribers.PurposePreferences, sub, "daily")
		h.hook = e.bounceMarks("eve@example.org")
		r := e.postForm(path, url.Values{"shown": {"daily"}, "lists": {"daily"}, "frequency": {"daily"},
			"timezone": {"UTC"}, "send_hour": {"-1"}})
		if r.status != 200 {
			t.Fatalf("save: %d", r.status)
		}
		if got := e.sub("eve@example.org"); !h.fired.Load() || got.StatusOn("daily") != subscribers.Bounced || got.Timezone != "UTC" {
			t.Errorf("after save: %+v: want daily still bounced", got)
		}
	})
	t.Run("PreferencesChangesOnlyWhatWasChanged", func(t *testing.T) {
		e := newEnv(t)
		sub := e.addSub("fay@example.org", subscribers.Confirmed, "daily")
		path := "/preferences/" + e.token(subscribers.PurposePreferences, sub, "daily")
		// Shown: daily ticked, weekly not. The person unticks daily and
		// ticks weekly.
		r := e.postForm(path, url.Values{"shown": {"daily"}, "lists": {"weekly"}, "frequency": {"daily"}, "timezone": {"UTC"}, "send_hour": {"-1"}})
		got := e.sub("fay@example.org")
		if r.status != 200 || got.StatusOn("daily") != subscribers.Unsubscribed || got.StatusOn("weekly") != subscribers.Confirmed {
			t.Errorf("%d, lists %+v: want daily unsubscribed, weekly confirmed", r.status, got.Lists)
		}
	})
	t.Run("SignUpWhileAnotherSignUpCreatesTheAddress", func(t *testing.T) {
		e, h := newHookEnv(t)
		// The first sign-up finds no subscriber; before it adds one, a
		// second request signs the same address up to another list.
		h.at = "add"
		h.hook = func() {
			body := `{"email":"gil@example.org","lists":["weekly"]}`
			if r := e.do("POST", "/subscribe", strings.NewReader(body), "Content-Type", "application/json"); r.status != 202 {
				t.Errorf("second sign-up: %d", r.status)
			}
		}
		r := e.do("POST", "/subscribe", strings.NewReader(`{"email":"gil@example.org","lists":["daily"]}`), "Content-Type", "application/json")
		if r.status != 202 || !h.fired.Load() {
			t.Fatalf("first sign-up: %d (hook fired: %v)", r.status, h.fired.Load())
		}
		got := e.sub("gil@example.org")
		if got.StatusOn("daily") != subscribers.Pending || got.StatusOn("weekly") != subscribers.Pending {
			t.Errorf("lists %+v: want both pending", got.Lists)
		}
		e.waitMail()
	})
	t.Run("SignUpWhileAdminAddsList", func(t *testing.T) {
		e, h := newHookEnv(t)
		e.addSub("hal@example.org", subscribers.Unsubscribed, "daily")
		h.hook = e.adminAdds("hal@example.org", "weekly")
		r := e.postForm("/subscribe", url.Values{"email": {"hal@example.org"}, "lists": {"daily"}})
		got := e.sub("hal@example.org")
		if r.status != 200 || !h.fired.Load() || got.StatusOn("daily") != subscribers.Pending || got.StatusOn("weekly") != subscribers.Confirmed {
			t.Errorf("%d, lists %+v: want daily pending and weekly confirmed", r.status, got.Lists)
		}
		e.waitMail()
	})
}

// TestSubscriberChangedReported checks what the pages report for metrics:
// each change once, with the record before and after.
func TestSubscriberChangedReported(t *testing.T) {
	var mu sync.Mutex
	var seen []string // list:before→after
	e := newEnv(t, func(s *Server) {
		s.SubscriberChanged = func(old, new subscribers.Subscriber) {
			mu.Lock()
			defer mu.Unlock()
			for l, m := range new.Lists {
				if was := old.StatusOn(l); was != m.Status {
					seen = append(seen, l+":"+string(was)+"→"+string(m.Status))
				}
			}
		}
	})
	link := e.signUpAndConfirmLink("ivy@example.org", "daily")
	e.get(link)
	e.clock.Add(time.Minute)
	e.get(link) // again: no change
	sub := e.sub("ivy@example.org")
	e.postForm("/unsubscribe/"+e.token(subscribers.PurposeUnsubscribe, sub, "daily"), nil)
	e.waitMail()
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(seen, " "), "daily:→pending daily:pending→confirmed daily:confirmed→unsubscribed"; got != want {
		t.Errorf("reported %q, want %q", got, want)
	}
}
