package web

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"newsdigest/digest/capture"
	"newsdigest/subscribers"
)

// welcomes returns the welcome emails among msgs.
func welcomes(t *testing.T, msgs []capture.Received) []parsedMail {
	t.Helper()
	var out []parsedMail
	for _, m := range msgs {
		if p := parseMail(t, m.Data); strings.HasPrefix(p.header.Get("Subject"), "Welcome to ") {
			out = append(out, p)
		}
	}
	return out
}

// signUpAndConfirmLink signs email up to lists by JSON and returns the
// link of the confirmation email.
func (e *env) signUpAndConfirmLink(email string, lists ...string) string {
	e.t.Helper()
	body := `{"email":"` + email + `","name":"Zebulon <b>","lists":["` + strings.Join(lists, `","`) + `"]}`
	if r := e.do("POST", "/subscribe", strings.NewReader(body), "Content-Type", "application/json"); r.status != 202 {
		e.t.Fatalf("sign-up: %d %s", r.status, r.body)
	}
	msgs := e.waitMail()
	return confirmLink(e.t, parseMail(e.t, msgs[len(msgs)-1].Data))
}

var (
	welcomeUnsubRe = regexp.MustCompile(`https?://[^\s"<>]+/unsubscribe/[A-Za-z0-9_.-]+`)
	welcomePrefsRe = regexp.MustCompile(`https?://[^\s"<>]+/preferences/[A-Za-z0-9_.-]+`)
)

func TestWelcomeEmail(t *testing.T) {
	e := newEnv(t)
	link := e.signUpAndConfirmLink("zeb@example.org", "daily")
	if n := len(welcomes(t, e.waitMail())); n != 0 {
		t.Fatalf("%d welcome emails before confirming", n)
	}
	if r := e.get(link); r.status != 200 || !strings.Contains(r.body, "You are subscribed") {
		t.Fatalf("confirm: %d", r.status)
	}
	msgs := e.waitMail()
	ws := welcomes(t, msgs)
	if len(msgs) != 2 || len(ws) != 1 {
		t.Fatalf("after confirming: %d mails, %d welcome, want 2 and 1", len(msgs), len(ws))
	}
	w := ws[0]
	raw := string(msgs[1].Data)
	if msgs[1].To[0] != "zeb@example.org" || len(msgs[1].To) != 1 {
		t.Errorf("recipients %v", msgs[1].To)
	}

	t.Run("Headers", func(t *testing.T) {
		h := w.header
		for k, want := range map[string]string{
			"From":                  "digest@gazette.example>",
			"To":                    "<zeb@example.org>",
			"Subject":               "Welcome to The Daily",
			"List-Id":               "The Daily <daily.gazette.example>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"Feedback-Id":           "welcome:daily:newsdigest",
		} {
			if got := strings.ReplaceAll(h.Get(k), `"`, ""); !strings.HasSuffix(got, want) {
				t.Errorf("%s: %q, want %q", k, h.Get(k), want)
			}
		}
		lu := h.Get("List-Unsubscribe")
		unsub := welcomeUnsubRe.FindString(w.text)
		if unsub == "" || !strings.Contains(lu, "<"+unsub+">") || !strings.Contains(lu, "<mailto:digest@gazette.example?subject=unsubscribe%20") {
			t.Errorf("List-Unsubscribe %q, visible link %q", lu, unsub)
		}
		if !strings.HasSuffix(h.Get("Message-Id"), "@gazette.example>") || h.Get("Date") == "" || h.Get("User-Agent") != "" {
			t.Errorf("Message-ID %q, Date %q, User-Agent %q", h.Get("Message-Id"), h.Get("Date"), h.Get("User-Agent"))
		}
	})
	t.Run("Parts", func(t *testing.T) {
		for name, part := range map[string]string{"text": w.text, "html": w.html} {
			for _, want := range []string{e.ts.URL + "/archive", "one email a day", "The Daily", "1 Main Street", "Unsubscribe", "preferences"} {
				if !strings.Contains(part, want) {
					t.Errorf("%s part lacks %q", name, want)
				}
			}
			if u := welcomeUnsubRe.FindString(part); !strings.HasPrefix(u, e.ts.URL+"/unsubscribe/") {
				t.Errorf("%s part: unsubscribe link %q", name, u)
			}
			if u := welcomePrefsRe.FindString(part); !strings.HasPrefix(u, e.ts.URL+"/preferences/") {
				t.Errorf("%s part: preferences link %q", name, u)
			}
		}
		// Nothing the person typed: not the name, and no address in a link.
		for _, bad := range []string{"Zebulon", "zeb%40", "zeb@example.org/"} {
			if strings.Contains(raw[strings.Index(raw, "\r\n\r\n"):], bad) {
				t.Errorf("the welcome email's body contains %q", bad)
			}
		}
	})
	t.Run("LinksWork", func(t *testing.T) {
		if r := e.get(welcomePrefsRe.FindString(w.text)); r.status != 200 || !strings.Contains(r.body, "Your preferences") {
			t.Errorf("preferences link: %d", r.status)
		}
		if r := e.get(e.ts.URL + "/archive"); r.status != 200 {
			t.Errorf("archive link: %d", r.status)
		}
		// One click, as a mail provider posts it.
		r := e.do("POST", welcomeUnsubRe.FindString(w.text), strings.NewReader("List-Unsubscribe=One-Click"),
			"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site")
		if r.status != 200 || e.sub("zeb@example.org").StatusOn("daily") != subscribers.Unsubscribed {
			t.Errorf("one-click unsubscribe from the welcome email: %d, status %q", r.status, e.sub("zeb@example.org").StatusOn("daily"))
		}
	})

	// The confirm link opened again (the subscriber, or a mail scanner)
	// sends nothing more.
	e.clock.Add(time.Hour)
	if r := e.get(link); r.status != 200 {
		t.Fatalf("second confirm: %d", r.status)
	}
	if n := len(e.waitMail()); n != 2 {
		t.Errorf("%d mails after opening the confirm link twice, want 2", n)
	}
}

func TestWelcomeOncePerConfirmation(t *testing.T) {
	e := newEnv(t)
	t.Run("Concurrent", func(t *testing.T) {
		link := e.signUpAndConfirmLink("race@example.org", "daily")
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				if r := e.get(link); r.status != 200 {
					t.Errorf("confirm: %d", r.status)
				}
			})
		}
		wg.Wait()
		if n := len(welcomes(t, e.waitMail())); n != 1 {
			t.Errorf("%d welcome emails from six visits at once, want 1", n)
		}
	})
	t.Run("AgainAfterResubscribing", func(t *testing.T) {
		// Unsubscribed, then signed up and confirmed anew: a new
		// confirmation event, so a new welcome.
		sub := e.sub("race@example.org")
		r := e.do("POST", "/unsubscribe/"+e.token(subscribers.PurposeUnsubscribe, sub, "daily"), strings.NewReader("List-Unsubscribe=One-Click"),
			"Content-Type", "application/x-www-form-urlencoded")
		if r.status != 200 {
			t.Fatal(r.status)
		}
		e.clock.Add(25 * time.Hour) // past the one-confirmation-a-day limit
		if r := e.get(e.signUpAndConfirmLink("race@example.org", "daily")); r.status != 200 {
			t.Fatal(r.status)
		}
		if n := len(welcomes(t, e.waitMail())); n != 2 {
			t.Errorf("%d welcome emails after confirming twice, want 2", n)
		}
	})
}

func TestWelcomeSeveralLists(t *testing.T) {
	e := newEnv(t)
	// A list title with markup: escaped in the HTML, kept as text.
	if err := e.st.PutList(subscribers.List{Name: "weekly", Title: `The <script>alert(1)</script> "Weekly" & Co`, From: "Gazette <weekly@gazette.example>",
		Schedule: "CRON_TZ=Europe/Paris 30 7 * * *"}); err != nil {
		t.Fatal(err)
	}
	d, err := e.st.GetList("daily")
	if err != nil {
		t.Fatal(err)
	}
	d.Schedule = "CRON_TZ=Europe/Paris 30 7 * * *"
	if err := e.st.PutList(d); err != nil {
		t.Fatal(err)
	}
	if r := e.get(e.signUpAndConfirmLink("multi@example.org", "daily", "weekly")); r.status != 200 {
		t.Fatal(r.status)
	}
	ws := welcomes(t, e.waitMail())
	if len(ws) != 1 {
		t.Fatalf("%d welcome emails for two lists confirmed at once, want 1", len(ws))
	}
	w := ws[0]
	if s := w.header.Get("Subject"); !strings.Contains(s, "The Daily and The") {
		t.Errorf("Subject %q", s)
	}
	if strings.Contains(w.html, "<script>") || !strings.Contains(w.html, "The &lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the HTML part does not escape the list title")
	}
	if !strings.Contains(w.text, `The <script>alert(1)</script> "Weekly" & Co`) {
		t.Errorf("the text part mangles the list title:\n%s", w.text)
	}
	for _, part := range []string{w.text, w.html} {
		if !strings.Contains(part, "at about 07:30 (Europe/Paris time)") {
			t.Errorf("no time of day from the lists' schedule:\n%s", part)
		}
	}
	// One unsubscribe link for both lists joined together.
	r := e.do("POST", welcomeUnsubRe.FindString(w.text), strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded")
	sub := e.sub("multi@example.org")
	if r.status != 200 || sub.StatusOn("daily") != subscribers.Unsubscribed || sub.StatusOn("weekly") != subscribers.Unsubscribed {
		t.Errorf("unsubscribe from the welcome email: %d, %+v", r.status, sub.Lists)
	}
}

func TestWelcomeSendTime(t *testing.T) {
	d := subscribers.List{Name: "daily", Schedule: "CRON_TZ=Europe/Paris 0 7 * * *"}
	w := subscribers.List{Name: "weekly", Schedule: "TZ=Asia/Tokyo 5 18 * * 1"}
	noHour := subscribers.Subscriber{SendHour: -1}
	for _, tc := range []struct {
		name     string
		sub      subscribers.Subscriber
		lists    []subscribers.List
		at, zone string
	}{
		{"OwnHour", subscribers.Subscriber{SendHour: 6, Timezone: "America/Denver"}, []subscribers.List{d}, "06:00", "America/Denver"},
		{"OwnHourNoZone", subscribers.Subscriber{SendHour: 23}, []subscribers.List{d}, "23:00", "UTC"},
		{"ListCron", noHour, []subscribers.List{d}, "07:00", "Europe/Paris"},
		{"WeekdayCron", noHour, []subscribers.List{w}, "18:05", "Asia/Tokyo"},
		{"ListsDisagree", noHour, []subscribers.List{d, w}, "", ""},
		{"NoZone", noHour, []subscribers.List{{Schedule: "0 7 * * *"}}, "", ""},
		{"BadZone", noHour, []subscribers.List{{Schedule: "CRON_TZ=Mars/Olympus 0 7 * * *"}}, "", ""},
		{"Hourly", noHour, []subscribers.List{{Schedule: "CRON_TZ=UTC 0 * * * *"}}, "", ""},
		{"Monthly", noHour, []subscribers.List{{Schedule: "CRON_TZ=UTC 0 7 1 * *"}}, "", ""},
		{"Local", noHour, []subscribers.List{{Schedule: "local"}}, "", ""},
		{"Descriptor", noHour, []subscribers.List{{Schedule: "@daily"}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if at, zone := sendTime(tc.sub, tc.lists); at != tc.at || zone != tc.zone {
				t.Errorf("got %q %q, want %q %q", at, zone, tc.at, tc.zone)
			}
		})
	}
}

func TestWelcomeNotSentBeforeConfirming(t *testing.T) {
	e := newEnv(t)
	e.postForm("/subscribe", url.Values{"email": {"solo@example.org"}, "lists": {"daily"}})
	if msgs := e.waitMail(); len(msgs) != 1 || len(welcomes(t, msgs)) != 0 {
		t.Errorf("after a sign-up: %d mails, %d welcome; want the confirmation alone", len(msgs), len(welcomes(t, msgs)))
	}
}

func TestWelcomeNotSentToSuppressed(t *testing.T) {
	e := newEnv(t)
	link := e.signUpAndConfirmLink("gone@example.org", "daily")
	if err := e.st.Suppress("gone@example.org", "complaint", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if r := e.get(link); r.status != 200 {
		t.Fatalf("confirm: %d", r.status)
	}
	if n := len(welcomes(t, e.waitMail())); n != 0 {
		t.Errorf("%d welcome emails to a suppressed address", n)
	}
}
