package delivery_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/delivery"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// countServer is an SMTP server that keeps no message, only how many
// copies each recipient got: a message counts once the whole body has
// arrived, when the server answers 250.
type countServer struct {
	srv *smtp.Server
	ln  net.Listener

	mu     sync.Mutex
	counts map[string]int
	ids    map[string]map[string]bool // Message-IDs received per recipient
	total  int
	grew   chan struct{} // signalled on every accepted message

	// Messages in flight per recipient domain (from RCPT to the end of
	// DATA), and the most seen at once.
	delay       time.Duration // spent in DATA, so that transactions overlap
	inflight    map[string]int
	maxInflight map[string]int
	maxTotal    int
	reply       func(to string) error // refuses a recipient when non-nil
}

func startCountServer(t *testing.T) *countServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs := &countServer{ln: ln, counts: map[string]int{}, ids: map[string]map[string]bool{}, grew: make(chan struct{}, 1),
		inflight: map[string]int{}, maxInflight: map[string]int{}}
	cs.srv = smtp.NewServer(countBackend{cs})
	cs.srv.Domain = "count.localhost"
	cs.srv.ReadTimeout, cs.srv.WriteTimeout = time.Minute, time.Minute
	cs.srv.ErrorLog = log.New(io.Discard, "", 0)
	go cs.srv.Serve(ln)
	t.Cleanup(func() { cs.srv.Close() })
	return cs
}

func (cs *countServer) addr() (string, int) {
	a := cs.ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// snapshot returns the messages accepted and the distinct recipients.
func (cs *countServer) snapshot() (total, distinct int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.total, len(cs.counts)
}

type countBackend struct{ cs *countServer }

func (b countBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &countSession{cs: b.cs}, nil
}

type countSession struct {
	cs   *countServer
	to   []string
	open []string // domains counted in flight
}

func (s *countSession) Reset()                               { s.done(); s.to = nil }
func (s *countSession) Logout() error                        { s.done(); return nil }
func (s *countSession) Mail(string, *smtp.MailOptions) error { s.to = nil; return nil }

func (s *countSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	cs := s.cs
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.reply != nil {
		if err := cs.reply(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	d := to[strings.LastIndexByte(to, '@')+1:]
	s.open = append(s.open, d)
	cs.inflight[d]++
	cs.maxInflight[d] = max(cs.maxInflight[d], cs.inflight[d])
	total := 0
	for _, n := range cs.inflight {
		total += n
	}
	cs.maxTotal = max(cs.maxTotal, total)
	return nil
}

// done ends the in-flight count of the session's transaction.
func (s *countSession) done() {
	s.cs.mu.Lock()
	for _, d := range s.open {
		s.cs.inflight[d]--
	}
	s.cs.mu.Unlock()
	s.open = nil
}

func (s *countSession) Data(r io.Reader) error {
	defer s.done()
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, m.Body); err != nil {
		return err
	}
	id := m.Header.Get("Message-ID")
	time.Sleep(s.cs.delay)
	s.cs.mu.Lock()
	for _, to := range s.to {
		s.cs.counts[to]++
		s.cs.total++
		if s.cs.ids[to] == nil {
			s.cs.ids[to] = map[string]bool{}
		}
		s.cs.ids[to][id] = true
	}
	s.cs.mu.Unlock()
	select {
	case s.cs.grew <- struct{}{}:
	default:
	}
	return nil
}

const crashWorkers = 4

// TestCrashHelper is the sending process of TestKillNineAndResume: it
// delivers the edition it is given and exits. It does nothing in a normal
// test run.
func TestCrashHelper(t *testing.T) {
	dbPath := os.Getenv("NEWSDIGEST_CRASH_DB")
	if dbPath == "" {
		t.Skip("helper process of TestKillNineAndResume")
	}
	st, err := boltstore.Open(dbPath, boltstore.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	port, _ := strconv.Atoi(os.Getenv("NEWSDIGEST_CRASH_PORT"))
	r, err := render.New("")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := subscribers.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	e := &delivery.Engine{
		Store: st, Renderer: r, Signer: signer, Clock: digest.FixedClock(now),
		BaseURL: "https://gazette.example/newsletter", Workers: crashWorkers, RetryBase: time.Millisecond,
		Dial: delivery.SMTPDialer(mailer.Config{Host: "127.0.0.1", Port: port, TLS: "none", Timeout: 10 * time.Second}),
	}
	if _, err := e.Deliver(context.Background(), os.Getenv("NEWSDIGEST_CRASH_EDITION")); err != nil {
		t.Fatal(err)
	}
}

// TestKillNineAndResume starts a 20,000-recipient send in a child process,
// kills it with SIGKILL at ten random points, resumes each time, and
// checks with the server's own count that nobody was missed, that each
// resume sent at most the in-flight messages (one per worker) twice, and
// that the bbolt file stays consistent.
func TestKillNineAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 20,000-recipient kill -9 test")
	}
	if raceEnabled {
		// The race detector slows every process of this test twentyfold
		// and checks nothing here that the other tests do not: run the
		// whole test in a copy built without it.
		cmd := exec.Command(helperBinary(t), "-test.run=^TestKillNineAndResume$", "-test.count=1", "-test.v")
		out, err := cmd.CombinedOutput()
		t.Logf("without -race:\n%s", out)
		if err != nil {
			t.Fatalf("kill -9 test: %v", err)
		}
		return
	}
	const n = 20000
	dbPath := filepath.Join(t.TempDir(), "crash.db")
	st, err := boltstore.Open(dbPath, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Clock = digest.FixedClock(now)
	seed(t, st, n)
	r, err := render.New("")
	if err != nil {
		t.Fatal(err)
	}
	ed, created, err := (&delivery.Engine{Store: st, Renderer: r, Clock: digest.FixedClock(now)}).Start("daily")
	if err != nil || !created {
		t.Fatalf("Start: %v %v", created, err)
	}
	st.Close()

	t.Logf("seeded and queued %d at %s", n, time.Now().Format("15:04:05.000"))
	helper := os.Args[0]
	cs := startCountServer(t)
	_, port := cs.addr()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	run := func(killAfter int) (exited bool) {
		cmd := exec.Command(helper, "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "NEWSDIGEST_CRASH_DB="+dbPath,
			"NEWSDIGEST_CRASH_PORT="+strconv.Itoa(port), "NEWSDIGEST_CRASH_EDITION="+ed.ID)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exit := make(chan error, 1)
		go func() { exit <- cmd.Wait() }()
		start, _ := cs.snapshot()
		deadline := time.After(2 * time.Minute)
		for {
			select {
			case err := <-exit:
				if err != nil {
					t.Fatalf("sending process failed: %v\n%s", err, out.String())
				}
				return true
			case <-cs.grew:
				if total, _ := cs.snapshot(); killAfter > 0 && total-start >= killAfter {
					cmd.Process.Kill() // SIGKILL
					<-exit
					return false
				}
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("sending process hung\n%s", out.String())
			}
		}
	}
	check := func(stage string) digest.Edition {
		st, err := boltstore.Open(dbPath, boltstore.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		defer st.Close()
		if err := st.Check(); err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		got, err := st.GetEdition(ed.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	crashes := 0
	for crashes < 10 {
		exited := run(1 + rng.IntN(n/12))
		total, distinct := cs.snapshot()
		// A copy to someone who already had one is a message the server
		// accepted before a crash that the ledger had not recorded: at
		// most the workers' count per crash so far. (Not per run: a run
		// killed early may leave some of the previous crash's to the next.)
		if dups := total - distinct; dups > crashes*crashWorkers {
			t.Errorf("after %d crashes and run %d: %d duplicates, want at most %d (the workers per crash)", crashes, crashes+1, dups, crashes*crashWorkers)
		}
		t.Logf("crash %d at %s: %d accepted", crashes+1, time.Now().Format("15:04:05.000"), total)
		led := check(fmt.Sprintf("after crash %d", crashes+1))
		if led.Sent > distinct {
			t.Errorf("crash %d: the ledger has %d sent, the server received %d distinct", crashes+1, led.Sent, distinct)
		}
		if exited {
			t.Fatalf("the send finished after %d crashes; want 10 (server count %d)", crashes, total)
		}
		crashes++
	}
	run(0)
	total, distinct := cs.snapshot()
	if dups := total - distinct; dups > crashes*crashWorkers {
		t.Errorf("%d duplicates after %d crashes, want at most %d (the workers per crash)", dups, crashes, crashes*crashWorkers)
	}
	final := check("at the end")
	if final.Status != digest.EditionSent || final.Sent != n {
		t.Errorf("edition %s with %d sent, want sent with %d", final.Status, final.Sent, n)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for i := range n {
		if e := fmt.Sprintf("reader%05d@example.org", i); cs.counts[e] == 0 {
			t.Errorf("%s was missed", e)
		}
	}
	// A copy sent twice carries the first one's Message-ID (receivers
	// drop it), and no two recipients share one.
	owner := map[string]string{}
	for to, ids := range cs.ids {
		if len(ids) != 1 {
			t.Errorf("%s got %d copies with %d Message-IDs, want one", to, cs.counts[to], len(ids))
		}
		for id := range ids {
			if prev, ok := owner[id]; ok {
				t.Errorf("%s and %s got the same Message-ID %s", prev, to, id)
			}
			owner[id] = to
		}
	}
	t.Logf("%d messages for %d recipients over 10 kill -9: %d duplicates (at most %d allowed)",
		cs.total, len(cs.counts), cs.total-len(cs.counts), 10*crashWorkers)
}

// helperBinary builds this package's test binary without the race
// detector.
func helperBinary(t *testing.T) string {
	out := filepath.Join(t.TempDir(), "delivery-helper.test")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "test", "-c", "-o", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the helper without -race: %v\n%s", err, b)
	}
	return out
}

// seed adds a list, three fresh articles and n confirmed subscribers.
func seed(t *testing.T, st *boltstore.Store, n int) {
	t.Helper()
	if err := st.PutList(subscribers.List{Name: "daily", Title: "The Daily", From: "Gazette <digest@gazette.example>"}); err != nil {
		t.Fatal(err)
	}
	var arts []digest.Article
	for i := range 3 {
		link := fmt.Sprintf("https://gazette.example/story/%d", i)
		arts = append(arts, digest.Article{
			ID: digest.ArticleID("", link), Link: link, Title: fmt.Sprintf("Story %d", i),
			SummaryHTML: "<p>Something happened.</p>", SummaryText: "Something happened.",
			Published: now.Add(-time.Duration(i+1) * time.Hour), Views: int64(100 * (3 - i)),
		})
	}
	if _, _, err := st.UpsertArticles(arts); err != nil {
		t.Fatal(err)
	}
	for lo := 0; lo < n; lo += 5000 {
		var rows []subscribers.Row
		for i := lo; i < min(lo+5000, n); i++ {
			sub := subscribers.Subscriber{Email: fmt.Sprintf("reader%05d@example.org", i), Name: fmt.Sprintf("Reader %d", i), SendHour: -1, Frequency: subscribers.Daily}
			sub.SetStatus("daily", subscribers.Confirmed, now)
			rows = append(rows, subscribers.Row{Subscriber: sub})
		}
		if _, _, _, err := st.UpsertSubscribers(rows, false); err != nil {
			t.Fatal(err)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
