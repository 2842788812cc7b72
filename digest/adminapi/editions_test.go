package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/delivery"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// testEditor previews with a real delivery engine on the test's store;
// its sample is the preview's HTML behind bytes that are not UTF-8, which
// must come through the API unchanged.
type testEditor struct{ e *delivery.Engine }

func (x testEditor) Preview(list, as string) (delivery.Preview, error) { return x.e.Preview(list, as) }

func (x testEditor) Sample(list string) (Sample, error) {
	pv, err := x.e.Preview(list, "")
	if err != nil {
		return Sample{}, err
	}
	return Sample{Edition: pv.Edition, Skipped: pv.Empty, EML: append([]byte("Subject: x\r\n\r\n\xff\xfe"), pv.HTML...)}, nil
}

// testRunner runs nothing: it refuses a second resume of an edition while
// the first is "running", as the daemon's sender does.
type testRunner struct {
	st   *boltstore.Store
	mu   sync.Mutex
	runs map[string]DeliveryRun
}

func (r *testRunner) Resume(id string) (DeliveryRun, error) {
	if _, err := r.st.GetEdition(id); err != nil {
		return DeliveryRun{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runs[id].Running {
		return DeliveryRun{}, fmt.Errorf("edition %s: %w in the daemon", id, ErrBusy)
	}
	run := DeliveryRun{Edition: id, Running: true, Total: 2}
	r.runs[id] = run
	return run, nil
}

func (r *testRunner) Run(id string) (DeliveryRun, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run, ok := r.runs[id]
	if !ok {
		return run, fmt.Errorf("edition %s: no send of it ran in this daemon (%w)", id, boltstore.ErrNotFound)
	}
	return run, nil
}

// editionFixture is a store with a list, two subscribers, two articles
// and an edition being sent: one delivery failed, one queued.
func editionFixture(t *testing.T) (*boltstore.Store, *Client, *httptest.Server, digest.Edition) {
	t.Helper()
	st, _, _ := start(t)
	now := time.Now()
	if err := st.PutList(subscribers.List{Name: "daily", Title: "The Daily", From: "Gazette <d@gazette.example>", Created: now}); err != nil {
		t.Fatal(err)
	}
	var rows []subscribers.Row
	for _, email := range []string{"ann@example.org", "bob@example.org"} {
		sub := subscribers.Subscriber{Email: email, SendHour: -1, Frequency: subscribers.Daily}
		sub.SetStatus("daily", subscribers.Confirmed, now)
		rows = append(rows, subscribers.Row{Subscriber: sub})
	}
	if _, _, _, err := st.UpsertSubscribers(rows, false); err != nil {
		t.Fatal(err)
	}
	arts := []digest.Article{
		{ID: digest.ArticleID("g1", ""), GUID: "g1", Link: "https://gazette.example/1", Title: "Harbour reopens", Published: now.Add(-time.Hour)},
		{ID: digest.ArticleID("g2", ""), GUID: "g2", Link: "https://gazette.example/2", Title: "Council votes", Published: now.Add(-2 * time.Hour)},
	}
	if _, _, err := st.UpsertArticles(arts); err != nil {
		t.Fatal(err)
	}
	ed := digest.Edition{ID: "daily-20261127-0000", List: "daily", Slot: now.Truncate(time.Minute), Subject: "The Daily",
		Stories: digest.Selection{Top: []digest.Pick{{Article: arts[0], Section: digest.SectionTop, Score: 0.25, Age: time.Hour, Reason: "top #1"}}},
		Status:  digest.EditionSending, Created: now}
	if _, err := st.CreateEdition(ed); err != nil {
		t.Fatal(err)
	}
	if _, err := st.QueueDeliveries(ed.ID, []string{"ann@example.org", "bob@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDeliveries([]digest.Delivery{{Edition: ed.ID, Email: "bob@example.org", Status: digest.DeliveryFailed, Reply: "550 5.1.1 no such user", Attempts: 1, At: now}}); err != nil {
		t.Fatal(err)
	}
	r, err := render.New("")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := subscribers.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	e := &delivery.Engine{Store: st, Renderer: r, Signer: signer, Clock: digest.SystemClock{}, BaseURL: "https://gazette.example/newsletter"}
	h, err := (&Server{Service: Direct{st}, Token: testToken, Editor: testEditor{e}, Runner: &testRunner{st: st, runs: map[string]DeliveryRun{}}, Tester: testTester{st: st}}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return st, &Client{BaseURL: ts.URL, Token: testToken}, ts, ed
}

// asJSON is v as the CLI prints it.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEditionsClientMatchesDirect(t *testing.T) {
	st, c, _, ed := editionFixture(t)
	d := Direct{st}

	got, err := c.Editions("")
	want, _ := d.Editions("")
	if err != nil || len(got) != 1 || asJSON(t, got) != asJSON(t, want) {
		t.Errorf("Editions: %v\nclient %s\ndirect %s", err, asJSON(t, got), asJSON(t, want))
	}
	if got, err := c.Editions("weekly"); err != nil || got != nil {
		t.Errorf("Editions of a list without any: %v %v, want nil as the store answers", got, err)
	}

	det, err := c.EditionDetail(ed.ID)
	wdet, _ := d.EditionDetail(ed.ID)
	if err != nil || asJSON(t, det) != asJSON(t, wdet) {
		t.Errorf("EditionDetail: %v\nclient %s\ndirect %s", err, asJSON(t, det), asJSON(t, wdet))
	}
	if det.Queued != 1 || len(det.Failures) != 1 || det.Failures[0].Reply != "550 5.1.1 no such user" || det.Stats.Failed != 1 || len(det.Stats.Stories) != 1 {
		t.Errorf("EditionDetail: %+v", det)
	}
	if got, err := c.GetEdition(ed.ID); err != nil || got.ID != ed.ID || got.Stories.Len() != 1 || got.Status != digest.EditionSending {
		t.Errorf("GetEdition: %+v %v", got, err)
	}

	// An unknown edition reads the same on both sides.
	for name, call := range map[string]func(Service) error{
		"GetEdition":    func(s Service) error { _, err := s.GetEdition("nope"); return err },
		"EditionDetail": func(s Service) error { _, err := s.EditionDetail("nope"); return err },
		"PauseEdition":  func(s Service) error { _, err := s.PauseEdition("nope"); return err },
	} {
		cerr, derr := call(c), call(d)
		if !errors.Is(cerr, boltstore.ErrNotFound) || derr == nil || cerr.Error() != derr.Error() {
			t.Errorf("%s of an unknown edition: client %v, direct %v", name, cerr, derr)
		}
	}

	p, err := c.PauseEdition(ed.ID)
	if err != nil || p.Status != digest.EditionPaused || p.Reason != "paused by an operator" {
		t.Errorf("PauseEdition: %+v %v", p, err)
	}
	if stored, _ := st.GetEdition(ed.ID); stored.Status != digest.EditionPaused {
		t.Errorf("stored after pause: %s", stored.Status)
	}
	// Pausing a paused edition changes nothing.
	if p, err := c.PauseEdition(ed.ID); err != nil || p.Status != digest.EditionPaused {
		t.Errorf("second pause: %+v %v", p, err)
	}
}

// TestEditionDetailBoundsFailures: an edition with more failures than
// DetailFailures lists the first of them in email order, with the total,
// the same on both sides.
func TestEditionDetailBoundsFailures(t *testing.T) {
	st, c, _, ed := editionFixture(t)
	const extra = DetailFailures + 20
	emails := make([]string, extra)
	for i := range emails {
		emails[i] = fmt.Sprintf("x%03d@example.org", i)
	}
	if _, err := st.QueueDeliveries(ed.ID, emails); err != nil {
		t.Fatal(err)
	}
	var ds []digest.Delivery
	for i, e := range emails {
		st := digest.DeliveryFailed
		if i%2 == 1 {
			st = digest.DeliverySuppressed
		}
		ds = append(ds, digest.Delivery{Edition: ed.ID, Email: e, Status: st, Reply: "550 5.1.1 no such user", Attempts: 1, At: time.Now()})
	}
	if err := st.RecordDeliveries(ds); err != nil {
		t.Fatal(err)
	}
	want, err := Direct{st}.EditionDetail(ed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Failures) != DetailFailures || want.FailuresTotal != extra+1 || want.Queued != 1 {
		t.Fatalf("detail: %d failures listed of %d, %d queued; want %d of %d, 1", len(want.Failures), want.FailuresTotal, want.Queued, DetailFailures, extra+1)
	}
	if want.Failures[0].Email != "bob@example.org" || want.Failures[1].Email != "x000@example.org" || want.Failures[DetailFailures-1].Email != fmt.Sprintf("x%03d@example.org", DetailFailures-2) {
		t.Errorf("not the first failures in email order: %s, %s … %s", want.Failures[0].Email, want.Failures[1].Email, want.Failures[DetailFailures-1].Email)
	}
	got, err := c.EditionDetail(ed.ID)
	if err != nil || asJSON(t, got) != asJSON(t, want) {
		t.Errorf("client %v\n%s\ndirect\n%s", err, asJSON(t, got), asJSON(t, want))
	}
}

func TestPreviewAndSampleEndpoints(t *testing.T) {
	st, c, _, _ := editionFixture(t)
	pv, err := c.Preview("daily", "ann@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pv.Reader, "ann@example.org") || pv.Edition.Stories.Len() == 0 || !bytes.Contains(pv.HTML, []byte("Council votes")) || len(pv.Text) == 0 {
		t.Errorf("preview: reader %q, %d stories, %d bytes of HTML", pv.Reader, pv.Edition.Stories.Len(), len(pv.HTML))
	}
	for _, p := range pv.Edition.Stories.Picks() {
		if p.Reason == "" || p.Score <= 0 {
			t.Errorf("a pick lost its reason or score on the way: %+v", p)
		}
	}
	sm, err := c.Sample("daily")
	if err != nil || !bytes.HasPrefix(sm.EML, []byte("Subject: x\r\n\r\n\xff\xfe<")) {
		t.Errorf("sample: the bytes changed on the way: %q %v", sm.EML[:min(20, len(sm.EML))], err)
	}

	// Bad input is answered clearly, as the engine reports it.
	_, err = c.Preview("nope", "")
	_, derr := st.GetList("nope")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" || err.Error() != derr.Error() {
		t.Errorf("preview of an unknown list: %v, want 404 %q", err, derr)
	}
	if _, err := c.Sample("nope"); !errors.Is(err, boltstore.ErrNotFound) || err.Error() != derr.Error() {
		t.Errorf("sample of an unknown list: %v", err)
	}
	_, err = c.Preview("daily", "not-an-address")
	if !errors.As(err, &ae) || ae.Status != 400 || !errors.Is(err, subscribers.ErrInvalidEmail) || !strings.Contains(err.Error(), "not-an-address") {
		t.Errorf("preview as a bad address: %v, want 400 naming it", err)
	}
}

func TestResumeEndpoints(t *testing.T) {
	_, c, _, ed := editionFixture(t)
	run, err := c.Resume(ed.ID)
	if err != nil || !run.Running || run.Total != 2 || run.Edition != ed.ID {
		t.Fatalf("resume: %+v %v", run, err)
	}
	_, err = c.Resume(ed.ID)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "busy" || !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), ed.ID) {
		t.Errorf("second resume while running: %v, want 409 busy", err)
	}
	if _, err := c.Resume("nope"); !errors.Is(err, boltstore.ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("resume of an unknown edition: %v", err)
	}
	if got, err := c.Run(ed.ID); err != nil || !got.Running {
		t.Errorf("run: %+v %v", got, err)
	}
	if _, err := c.Run("daily-other"); !errors.Is(err, boltstore.ErrNotFound) {
		t.Errorf("run of an edition never sent here: %v", err)
	}

	// The result reads as Deliver's own.
	r := DeliveryRun{Edition: ed.ID, Sent: 3, Failed: 1, Elapsed: 1500 * time.Millisecond, Error: "edition x paused: by an operator", Paused: true}
	if got := r.Result().String(); got != "edition daily-20261127-0000: 3 sent, 1 failed, 0 suppressed in 1.5s" {
		t.Errorf("Result: %s", got)
	}
	if !errors.Is(r.Err(), delivery.ErrPaused) || r.Err().Error() != r.Error {
		t.Errorf("Err: %v", r.Err())
	}
	if (DeliveryRun{}).Err() != nil {
		t.Error("a run without error has one")
	}
}

// TestEditionEndpointsNeedTheToken: every new route answers 401 without
// the bearer token, before it looks at anything.
func TestEditionEndpointsNeedTheToken(t *testing.T) {
	_, _, ts, ed := editionFixture(t)
	for _, route := range []string{
		"GET /api/editions", "GET /api/editions/" + ed.ID, "GET /api/editions/" + ed.ID + "/detail",
		"POST /api/editions/" + ed.ID + "/pause", "POST /api/editions/" + ed.ID + "/resume",
		"GET /api/editions/" + ed.ID + "/delivery", "GET /api/lists/daily/preview?as=ann@example.org", "GET /api/lists/daily/sample",
		"POST /api/lists/daily/test", "POST /api/lists/daily/dry-run",
	} {
		method, path, _ := strings.Cut(route, " ")
		for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
			req, _ := http.NewRequest(method, ts.URL+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e Error
			json.NewDecoder(res.Body).Decode(&e)
			res.Body.Close()
			if res.StatusCode != 401 || e.Code != "unauthorized" {
				t.Errorf("%s with %q: %d %+v", route, auth, res.StatusCode, e)
			}
		}
	}
}

// TestEditionEndpointsWithoutEngine: a server without an Editor or a
// Runner says so instead of failing obscurely.
func TestEditionEndpointsWithoutEngine(t *testing.T) {
	st, _, c := start(t)
	if err := st.PutList(subscribers.List{Name: "daily", Title: "Daily", From: "d@gazette.example"}); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"preview": func() error { _, err := c.Preview("daily", ""); return err },
		"sample":  func() error { _, err := c.Sample("daily"); return err },
		"resume":  func() error { _, err := c.Resume("daily-x"); return err },
		"run":     func() error { _, err := c.Run("daily-x"); return err },
		"test":    func() error { _, err := c.SendTest("daily", "ann@example.org"); return err },
		"dry run": func() error { _, err := c.DryRun("daily", nil); return err },
	} {
		err := call()
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 404 || !strings.Contains(err.Error(), "not available") {
			t.Errorf("%s: %v, want 404 not available", name, err)
		}
	}
	if eds, err := c.Editions(""); err != nil || eds != nil {
		t.Errorf("no editions: %v %v", eds, err)
	}
}

// testTester sends nothing: a test copy checks the list and the address
// as the engine does; a dry run writes a message per confirmed reader,
// bytes that are not UTF-8 included, or finds nothing new in a list
// named "quiet", or writes bigMessages messages of 64 KiB for a list named
// "big". Like the engine, a message that write refuses counts as failed
// and the run goes on until ctx ends; each run's result goes to ran.
type testTester struct {
	st  *boltstore.Store
	ran chan dryRunEnd
}

type dryRunEnd struct {
	res delivery.Result
	err error
}

const bigMessages = 2000

func (x testTester) SendTest(_ context.Context, list, to string) (digest.Edition, error) {
	if _, err := x.st.GetList(list); err != nil {
		return digest.Edition{}, err
	}
	if _, err := subscribers.NormalizeEmail(to); err != nil {
		return digest.Edition{}, err
	}
	return digest.Edition{ID: list + "-test", Stories: digest.Selection{Top: make([]digest.Pick, 2)}}, nil
}

func (x testTester) DryRun(ctx context.Context, list string, write func(string, []byte) error) (res delivery.Result, err error) {
	defer func() {
		if x.ran != nil {
			x.ran <- dryRunEnd{res, err}
		}
	}()
	res = delivery.Result{Edition: list + "-dry"}
	if list == "quiet" {
		return res, fmt.Errorf("list quiet: %w", delivery.ErrNothingNew)
	}
	var msgs []string
	var body []byte
	if list == "big" {
		body = bytes.Repeat([]byte("x"), 64<<10)
		for i := range bigMessages {
			msgs = append(msgs, fmt.Sprintf("r%05d@example.org", i))
		}
	} else {
		body = []byte("\xff\x00")
		if msgs, err = x.st.ConfirmedEmails(list, "", 100); err != nil {
			return res, err
		}
	}
	for _, e := range msgs {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err := write(e, append([]byte("To: "+e+"\r\n\r\n"), body...)); err != nil {
			res.Failed++
			continue
		}
		res.Sent++
	}
	return res, ctx.Err()
}

func TestTestAndDryRunEndpoints(t *testing.T) {
	st, c, _, _ := editionFixture(t)
	res, err := c.SendTest("daily", "Editor@Example.org")
	if err != nil || res.Edition != "daily-test" || res.Stories != 2 || res.To != "Editor@Example.org" {
		t.Errorf("test copy: %+v %v", res, err)
	}
	_, derr := st.GetList("nope")
	if _, err := c.SendTest("nope", "ann@example.org"); !errors.Is(err, boltstore.ErrNotFound) || err.Error() != derr.Error() {
		t.Errorf("test copy of an unknown list: %v", err)
	}
	var ae *APIError
	if _, err := c.SendTest("daily", "not-an-address"); !errors.As(err, &ae) || ae.Status != 400 || !errors.Is(err, subscribers.ErrInvalidEmail) {
		t.Errorf("test copy to a bad address: %v", err)
	}
	if _, err := c.SendTest("daily", ""); !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(err.Error(), `"to"`) {
		t.Errorf("test copy without an address: %v, want 400 naming \"to\"", err)
	}

	got := map[string][]byte{}
	dr, err := c.DryRun("daily", func(to string, eml []byte) error { got[to] = eml; return nil })
	if err != nil || dr.Sent != 2 || dr.Edition != "daily-dry" || len(got) != 2 {
		t.Fatalf("dry run: %+v %v, %d messages", dr, err, len(got))
	}
	if string(got["ann@example.org"]) != "To: ann@example.org\r\n\r\n\xff\x00" {
		t.Errorf("dry run: the bytes changed on the way: %q", got["ann@example.org"])
	}
	if _, err := c.DryRun("nope", func(string, []byte) error { return nil }); !errors.Is(err, boltstore.ErrNotFound) || err.Error() != derr.Error() {
		t.Errorf("dry run of an unknown list: %v, want %v", err, derr)
	}
	if err := st.PutList(subscribers.List{Name: "quiet", Title: "Quiet", From: "q@gazette.example"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DryRun("quiet", func(string, []byte) error { return nil }); !errors.Is(err, delivery.ErrNothingNew) || !strings.Contains(err.Error(), "list quiet") {
		t.Errorf("dry run with nothing new: %v, want ErrNothingNew", err)
	}
	// A stream cut before its last line is an error, not a success.
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"to":"ann@example.org","eml":"eA=="}` + "\n"))
	}))
	defer cut.Close()
	if _, err := (&Client{BaseURL: cut.URL, Token: testToken}).DryRun("daily", func(string, []byte) error { return nil }); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("cut stream: %v", err)
	}
}

// TestDryRunStopsWhenTheClientStopsReading: a client that asks for a dry
// run and takes none of it (hung, or gone behind a proxy that keeps the
// connection) stops the run at the first line it does not take, instead
// of having every other message composed for nobody.
func TestDryRunStopsWhenTheClientStopsReading(t *testing.T) {
	st, _, _ := start(t)
	if err := st.PutList(subscribers.List{Name: "big", Title: "Big", From: "b@gazette.example"}); err != nil {
		t.Fatal(err)
	}
	wait := dryRunWriteWait
	dryRunWriteWait = 50 * time.Millisecond
	t.Cleanup(func() { dryRunWriteWait = wait })
	ran := make(chan dryRunEnd, 1)
	h, err := (&Server{Service: Direct{st}, Token: testToken, Tester: testTester{st: st, ran: ran}}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/lists/big/dry-run HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\n\r\n", testToken)
	var end dryRunEnd
	select {
	case end = <-ran:
	case <-time.After(30 * time.Second):
		t.Fatal("the dry run did not end")
	}
	if n := end.res.Sent + end.res.Failed; !errors.Is(end.err, context.Canceled) || n >= bigMessages || end.res.Failed > 1 {
		t.Errorf("dry run for a client that reads nothing: %d written, %d refused of %d, %v; want it stopped at the first refused",
			end.res.Sent, end.res.Failed, bigMessages, end.err)
	}
}
