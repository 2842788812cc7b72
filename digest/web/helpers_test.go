package web

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/capture"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var _ digest.Clock = (*testClock)(nil)

var testSecret = []byte("0123456789abcdef0123456789abcdef-web-tests")

type env struct {
	t      *testing.T
	st     *boltstore.Store
	srv    *Server
	ts     *httptest.Server
	smtp   *capture.Server
	clock  *testClock
	signer *subscribers.Signer
}

type envOption func(*Server)

// newEnv starts the pages on an httptest server over a real bbolt file,
// sending confirmation emails through go-mail to an in-process SMTP
// server. Lists daily and weekly exist.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	st, err := boltstore.Open(t.TempDir()+"/nd.db", boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	smtpSrv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtpSrv.Close() })
	for _, l := range []subscribers.List{
		{Name: "daily", Title: "The Daily", From: "Gazette <digest@gazette.example>"},
		{Name: "weekly", Title: "The Weekly", From: "Gazette <weekly@gazette.example>"},
	} {
		if err := st.PutList(l); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := subscribers.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New("")
	if err != nil {
		t.Fatal(err)
	}
	sys, err := render.NewSystem("")
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	st.Clock = clock
	cfg := mailer.Config{Host: smtpSrv.Host(), Port: smtpSrv.Port(), TLS: "none", Timeout: 10 * time.Second, HELO: "web.test"}
	srv := &Server{
		Store: st, Signer: signer, Renderer: r, System: sys, Clock: clock,
		Send: func(ctx context.Context, msg *gomail.Msg) error {
			c, err := mailer.Dial(ctx, cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Send(ctx, msg)
		},
		Brand: render.Brand{SiteName: "The Gazette", PostalAddress: "1 Main Street\nExample City"},
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Start()
	srv.BaseURL = ts.URL
	for _, o := range opts {
		o(srv)
	}
	h, err := srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = h
	t.Cleanup(ts.Close)
	return &env{t: t, st: st, srv: srv, ts: ts, smtp: smtpSrv, clock: clock, signer: signer}
}

// waitMail waits for background sends and returns the messages received.
func (e *env) waitMail() []capture.Received {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		e.t.Fatal(err)
	}
	return e.smtp.Messages()
}

type resp struct {
	status int
	header http.Header
	body   string
}

// do sends a request to the pages. Without a Sec-Fetch-Site header it is
// what a non-browser client sends.
func (e *env) do(method, path string, body io.Reader, hdr ...string) resp {
	e.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.ts.URL + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

func (e *env) get(path string, hdr ...string) resp { return e.do("GET", path, nil, hdr...) }

// postForm posts url-encoded fields as a same-origin browser would.
func (e *env) postForm(path string, v url.Values, hdr ...string) resp {
	h := append([]string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin", "Origin", e.ts.URL}, hdr...)
	return e.do("POST", path, strings.NewReader(v.Encode()), h...)
}

func (e *env) sub(email string) subscribers.Subscriber {
	e.t.Helper()
	s, err := e.st.GetSubscriber(email)
	if err != nil {
		e.t.Fatalf("subscriber %s: %v", email, err)
	}
	return s
}

// addSub stores a subscriber with statuses, e.g. "daily", Confirmed.
func (e *env) addSub(email string, st subscribers.Status, lists ...string) subscribers.Subscriber {
	e.t.Helper()
	s := subscribers.Subscriber{Email: email, SendHour: -1, Frequency: subscribers.Daily}
	for _, l := range lists {
		s.SetStatus(l, st, e.clock.Now())
	}
	if err := e.st.PutSubscriber(s); err != nil {
		e.t.Fatal(err)
	}
	return e.sub(email)
}

func (e *env) token(p subscribers.Purpose, sub subscribers.Subscriber, list string) string {
	return e.signer.Sign(p, sub.ID, list, time.Time{})
}

// parsedMail is a received message's headers and decoded parts.
type parsedMail struct {
	header     mail.Header
	text, html string
}

func parseMail(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	p := parsedMail{header: m.Header}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q: want multipart/alternative", m.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = part
		if strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			r = quotedprintable.NewReader(part)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			p.text = string(b)
		case "text/html":
			p.html = string(b)
		}
	}
	return p
}

var confirmLinkRe = regexp.MustCompile(`https?://[^\s"<>]+/confirm/[A-Za-z0-9_.-]+`)

// confirmLink returns the confirmation URL of a message, checking that
// the text and HTML parts carry the same one.
func confirmLink(t *testing.T, p parsedMail) string {
	t.Helper()
	a := confirmLinkRe.FindString(p.text)
	b := confirmLinkRe.FindString(p.html)
	if a == "" || a != b {
		t.Fatalf("confirm link: text %q, html %q", a, b)
	}
	return a
}
