package web

import (
	"bytes"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"
	"time"

	"newsdigest/subscribers"
)

func TestSubscribeAndConfirm(t *testing.T) {
	e := newEnv(t)
	form := e.get("/subscribe")
	if form.status != 200 || !strings.Contains(form.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /subscribe: %d, CSP %q", form.status, form.header.Get("Content-Security-Policy"))
	}
	for _, want := range []string{`name="email"`, `value="daily"`, `value="weekly"`, `name="website"`, `name="viewport"`} {
		if !strings.Contains(form.body, want) {
			t.Errorf("form lacks %s", want)
		}
	}

	r := e.postForm("/subscribe", url.Values{"email": {"Zeb@Example.org"}, "name": {"Zebulon"}, "lists": {"daily"}})
	if r.status != 200 || !strings.Contains(r.body, "Check your inbox") {
		t.Fatalf("POST /subscribe: %d\n%s", r.status, r.body)
	}
	sub := e.sub("zeb@example.org")
	if got := sub.StatusOn("daily"); got != subscribers.Pending {
		t.Fatalf("status after sign-up: %q, want pending", got)
	}
	if sub.StatusOn("weekly") != "" || sub.Name != "Zebulon" {
		t.Errorf("subscriber %+v", sub)
	}

	msgs := e.waitMail()
	if len(msgs) != 1 || msgs[0].To[0] != "zeb@example.org" {
		t.Fatalf("mails: %+v", msgs)
	}
	m := parseMail(t, msgs[0].Data)
	if from := m.header.Get("From"); !strings.Contains(from, "digest@gazette.example") {
		t.Errorf("From %q", from)
	}
	if subj := m.header.Get("Subject"); !strings.Contains(subj, "The Daily") {
		t.Errorf("Subject %q", subj)
	}
	if strings.Contains(string(msgs[0].Data), "Zebulon") {
		t.Error("the submitted name is in the confirmation email")
	}
	link := confirmLink(t, m)
	if !strings.HasPrefix(link, e.ts.URL+"/confirm/") || strings.Contains(link, "zeb") || strings.Contains(link, "%40") {
		t.Errorf("confirm link %q", link)
	}

	e.clock.Add(time.Hour)
	c := e.get(link)
	if c.status != 200 || !strings.Contains(c.body, "You are subscribed") || !strings.Contains(c.body, "/preferences/") {
		t.Fatalf("confirm: %d\n%s", c.status, c.body)
	}
	sub = e.sub("zeb@example.org")
	if sub.StatusOn("daily") != subscribers.Confirmed {
		t.Fatalf("status after confirm: %q", sub.StatusOn("daily"))
	}
	want := subscribers.Consent{Time: e.clock.Now(), IP: "127.0.0.1", Source: "form"}
	if !sub.Consent.Time.Equal(want.Time) || sub.Consent.IP != want.IP || sub.Consent.Source != want.Source {
		t.Errorf("consent %+v, want %+v", sub.Consent, want)
	}

	// Opening the link again changes nothing; signing up again sends no
	// second mail but answers the same.
	e.clock.Add(time.Hour)
	if c2 := e.get(link); c2.status != 200 || !e.sub("zeb@example.org").Consent.Time.Equal(want.Time) {
		t.Errorf("second confirm: %d, consent %+v", c2.status, e.sub("zeb@example.org").Consent)
	}
	r2 := e.postForm("/subscribe", url.Values{"email": {"zeb@example.org"}, "lists": {"daily"}})
	if r2.status != r.status || r2.body != r.body {
		t.Errorf("second sign-up answered differently: %d", r2.status)
	}
	if n := len(e.waitMail()); n != 2 {
		t.Errorf("%d mails after a sign-up of a confirmed address, want 2 (the confirmation and the welcome)", n)
	}
}

func TestSubscribeJSON(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/subscribe", strings.NewReader(`{"email":"bob@example.org","name":"Bob","lists":["daily","weekly"]}`), "Content-Type", "application/json")
	if r.status != 202 || !strings.Contains(r.body, `"ok": true`) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("JSON sign-up: %d %s", r.status, r.body)
	}
	msgs := e.waitMail()
	if len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
	m := parseMail(t, msgs[0].Data)
	if subj := m.header.Get("Subject"); !strings.Contains(subj, "The Daily and The Weekly") {
		t.Errorf("Subject %q", subj)
	}
	if c := e.get(confirmLink(t, m)); c.status != 200 {
		t.Fatalf("confirm: %d", c.status)
	}
	sub := e.sub("bob@example.org")
	if sub.StatusOn("daily") != subscribers.Confirmed || sub.StatusOn("weekly") != subscribers.Confirmed || sub.Consent.Source != "api" {
		t.Errorf("after confirm: %+v", sub)
	}

	for _, tc := range []struct{ name, body string }{
		{"BadEmail", `{"email":"not-an-address","lists":["daily"]}`},
		{"UnknownList", `{"email":"c@example.org","lists":["nope"]}`},
		{"NoListOfTwo", `{"email":"c@example.org"}`},
		{"Malformed", `{"email":`},
		{"WrongType", `{"email":["a"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/subscribe", strings.NewReader(tc.body), "Content-Type", "application/json")
			if r.status != 400 || !strings.Contains(r.body, `"ok": false`) {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
	if _, err := e.st.GetSubscriber("c@example.org"); err == nil {
		t.Error("a refused sign-up stored a subscriber")
	}
}

func TestOneConfirmationPerDay(t *testing.T) {
	e := newEnv(t)
	signup := func() {
		t.Helper()
		if r := e.postForm("/subscribe", url.Values{"email": {"carol@example.org"}, "lists": {"daily"}}); r.status != 200 {
			t.Fatalf("sign-up: %d", r.status)
		}
	}
	signup()
	e.clock.Add(23 * time.Hour)
	signup()
	if n := len(e.waitMail()); n != 1 {
		t.Fatalf("%d mails within a day, want 1", n)
	}
	e.clock.Add(2 * time.Hour)
	signup()
	if n := len(e.waitMail()); n != 2 {
		t.Fatalf("%d mails after a day, want 2", n)
	}
}

func TestConfirmLinkExpires(t *testing.T) {
	e := newEnv(t)
	e.postForm("/subscribe", url.Values{"email": {"dan@example.org"}, "lists": {"daily"}})
	msgs := e.waitMail()
	if len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
	link := confirmLink(t, parseMail(t, msgs[0].Data))
	e.clock.Add(DefaultConfirmTTL + time.Second)
	if r := e.get(link); r.status != 400 || !strings.Contains(r.body, "This link does not work") {
		t.Errorf("expired confirm link: %d", r.status)
	}
	if st := e.sub("dan@example.org").StatusOn("daily"); st != subscribers.Pending {
		t.Errorf("status %q after an expired link, want pending", st)
	}
}

func TestSubscribeHostileInput(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.IPBurst = 50 })
	t.Run("NameWithCRLFAndScript", func(t *testing.T) {
		name := "Eve\r\nBcc: victim@example.org\r\n<script>alert(1)</script>"
		r := e.postForm("/subscribe", url.Values{"email": {"eve@example.org"}, "name": {name}, "lists": {"daily"}})
		if r.status != 200 {
			t.Fatalf("%d", r.status)
		}
		sub := e.sub("eve@example.org")
		if strings.ContainsAny(sub.Name, "\r\n") || sub.Name != "Eve Bcc: victim@example.org <script>alert(1)</script>" {
			t.Errorf("stored name %q", sub.Name)
		}
		msgs := e.waitMail()
		if len(msgs) != 1 {
			t.Fatalf("%d mails", len(msgs))
		}
		raw := string(msgs[0].Data)
		for _, bad := range []string{"Eve", "victim", "<script", "alert", "Bcc"} {
			if strings.Contains(raw, bad) {
				t.Errorf("confirmation email contains %q", bad)
			}
		}
		if len(msgs[0].To) != 1 {
			t.Errorf("recipients %v", msgs[0].To)
		}
	})
	t.Run("ScriptEchoedEscaped", func(t *testing.T) {
		r := e.postForm("/subscribe", url.Values{"email": {"<script>alert(1)</script>"}, "name": {`"><script>alert(2)</script>`}, "lists": {"daily"}})
		if r.status != 400 || strings.Contains(r.body, "<script>alert") || !strings.Contains(r.body, "&lt;script&gt;alert(1)") {
			t.Errorf("%d\n%s", r.status, r.body)
		}
	})
	t.Run("EmailWithCRLF", func(t *testing.T) {
		r := e.postForm("/subscribe", url.Values{"email": {"x@example.org\r\nBcc: y@example.org"}, "lists": {"daily"}})
		if r.status != 400 {
			t.Errorf("%d", r.status)
		}
	})
	t.Run("OversizedForm", func(t *testing.T) {
		r := e.postForm("/subscribe", url.Values{"email": {"big@example.org"}, "name": {strings.Repeat("A", 2*MaxFormBytes)}})
		if r.status != 413 {
			t.Errorf("%d", r.status)
		}
		rj := e.do("POST", "/subscribe", strings.NewReader(`{"email":"big@example.org","name":"`+strings.Repeat("A", 2*MaxFormBytes)+`"}`), "Content-Type", "application/json")
		if rj.status != 413 {
			t.Errorf("JSON: %d", rj.status)
		}
		if _, err := e.st.GetSubscriber("big@example.org"); err == nil {
			t.Error("stored")
		}
	})
	t.Run("Honeypot", func(t *testing.T) {
		r := e.postForm("/subscribe", url.Values{"email": {"bot@example.org"}, "website": {"http://spam.example"}, "lists": {"daily"}})
		if r.status != 200 || !strings.Contains(r.body, "Check your inbox") {
			t.Errorf("%d", r.status)
		}
		if _, err := e.st.GetSubscriber("bot@example.org"); err == nil {
			t.Error("a bot filling the honeypot was stored")
		}
	})
	t.Run("CrossSite", func(t *testing.T) {
		body := url.Values{"email": {"csrf@example.org"}, "lists": {"daily"}}.Encode()
		for _, hdr := range [][]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Origin", "https://evil.example"},
		} {
			r := e.do("POST", "/subscribe", strings.NewReader(body), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
			if r.status != 403 {
				t.Errorf("%v: %d", hdr, r.status)
			}
		}
		if _, err := e.st.GetSubscriber("csrf@example.org"); err == nil {
			t.Error("a cross-site post was stored")
		}
	})
	e.waitMail()
}

func TestSubscribeRateLimitPerIP(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.IPBurst = 3 })
	codes := []int{}
	for i := range 5 {
		r := e.postForm("/subscribe", url.Values{"email": {"p" + string(rune('a'+i)) + "@example.org"}, "lists": {"daily"}})
		codes = append(codes, r.status)
	}
	if codes[2] != 200 || codes[3] != 429 || codes[4] != 429 {
		t.Errorf("statuses %v: want three 200 then 429", codes)
	}
	// Another client (a proxy header, trusted when configured) has its own bucket.
	e.srv.ClientIPHeader = "X-Real-IP"
	r := e.postForm("/subscribe", url.Values{"email": {"other@example.org"}, "lists": {"daily"}}, "X-Real-IP", "192.0.2.7")
	if r.status != 200 {
		t.Errorf("other client: %d", r.status)
	}
	e.waitMail()
}

func TestTrustedOrigin(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.TrustedOrigins = []string{"https://news.example"} })
	pre := e.do("OPTIONS", "/subscribe", nil, "Origin", "https://news.example", "Access-Control-Request-Method", "POST")
	if pre.status != 204 || pre.header.Get("Access-Control-Allow-Origin") != "https://news.example" {
		t.Errorf("preflight: %d %v", pre.status, pre.header)
	}
	r := e.do("POST", "/subscribe", strings.NewReader(`{"email":"site@example.org","lists":["daily"]}`),
		"Content-Type", "application/json", "Origin", "https://news.example", "Sec-Fetch-Site", "cross-site")
	if r.status != 202 || r.header.Get("Access-Control-Allow-Origin") != "https://news.example" {
		t.Errorf("trusted cross-origin JSON: %d %v", r.status, r.header)
	}
	bad := e.do("OPTIONS", "/subscribe", nil, "Origin", "https://evil.example")
	if bad.status != 403 || bad.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("untrusted preflight: %d", bad.status)
	}
	e.waitMail()
}

func multipartBody(t *testing.T, fields map[string]string) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, w.FormDataContentType()
}

func TestSubscribeMultipartForm(t *testing.T) {
	e := newEnv(t)
	body, ct := multipartBody(t, map[string]string{"email": "mp@example.org", "lists": "weekly"})
	r := e.do("POST", "/subscribe", body, "Content-Type", ct, "Sec-Fetch-Site", "same-origin")
	if r.status != 200 || e.sub("mp@example.org").StatusOn("weekly") != subscribers.Pending {
		t.Errorf("%d", r.status)
	}
	e.waitMail()
}
