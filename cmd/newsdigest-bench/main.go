// Command newsdigest-bench measures the delivery engine against a discard
// SMTP server: it seeds N confirmed subscribers in a temporary database,
// builds one realistic edition (ten stories, about 24 KB on the wire) and
// runs three phases, each in its own child process so that its CPU and
// peak RSS are its own:
//
//   - ceiling: a minimal pipelined SMTP client (RFC 2920) pushes the
//     engine's message, rendered and dot-stuffed once, over the same
//     number of connections: the sink's own ceiling for this message;
//   - engine: the real engine (ledger with group commit, rate limiter at
//     no limit, per-recipient personalization, W workers with reused SMTP
//     sessions);
//   - baseline: the same pre-rendered messages with net/smtp.
//
// It prints for each messages per second, CPU µs per message of the
// sending process (getrusage), its peak RSS (VmHWM), the message size on
// the wire and the sink's CPU, the engine-to-ceiling and
// engine-to-baseline throughput ratios, and where memory and system calls
// go. By default the discard server is Postfix's smtp-sink when
// /usr/sbin/smtp-sink exists, else a Go sink in a separate process.
//
//	go run ./cmd/newsdigest-bench [-n 100000] [-workers 8] [-phases ceiling,engine,baseline] [-rounds 1] [-smtp HOST:PORT]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/time/rate"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/delivery"
	"newsdigest/digest/mailer"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

const listName = "daily"

// defaultWorkers is the engine's default number of SMTP sessions (and
// the connections of the ceiling and the baseline): enough for the
// ledger's commit groups to be large and for the sink to stay busy while
// each worker waits for its previous outcome to be durable (the sink
// alone is saturated at 8).
const defaultWorkers = 64

func main() {
	log.SetFlags(0)
	log.SetPrefix("newsdigest-bench: ")
	n := flag.Int("n", 100000, "confirmed subscribers to seed and send to")
	workers := flag.Int("workers", defaultWorkers, "the engine's concurrent SMTP sessions (and the connections of the ceiling and baseline unless -conns)")
	conns := flag.Int("conns", 0, "connections of the ceiling and the baseline (default: -workers)")
	addr := flag.String("smtp", "", "send to this `HOST:PORT` (default: start a discard server)")
	sink := flag.String("sink", "auto", "discard server to start: auto (smtp-sink if present, else go), smtp-sink or go")
	dir := flag.String("dir", "", "keep the database in `DIR` (default: a temporary folder, removed)")
	phases := flag.String("phases", strings.Join(phaseNames, ","), "phases to run, in this order: some of ceiling, engine, baseline")
	baseline := flag.Bool("baseline", true, "run the net/smtp baseline (false: leave it out of -phases)")
	rounds := flag.Int("rounds", 1, "run the phases this many times, alternating, and print medians (the engine gets a fresh copy of the database each round)")
	verbose := flag.Bool("v", false, "also print each round's figures")
	ceilingMode := flag.String("ceiling-mode", "pipelined", "the ceiling client: pipelined (RFC 2920) or nowait (whole transactions without waiting for 354; not RFC 2920, for comparison)")
	ceilingWindow := flag.Int("ceiling-window", 1, "with -ceiling-mode nowait: unanswered transactions per connection")
	cpuprofile := flag.String("cpuprofile", "", "write the engine process's CPU profile to `FILE`")
	jsonOut := flag.Bool("json", false, "print the figures as JSON")
	phase := flag.String("phase", "", "internal: run one phase (send, raw, ceiling, sink)")
	db := flag.String("db", "", "internal: database of a phase")
	flag.Parse()

	var err error
	switch *phase {
	case "":
		o := options{n: *n, workers: *workers, conns: *conns, rounds: *rounds, addr: *addr, sinkKind: *sink, dir: *dir,
			cpuprofile: *cpuprofile, jsonOut: *jsonOut, verbose: *verbose, ceilingMode: *ceilingMode, ceilingWindow: *ceilingWindow}
		if o.conns == 0 {
			o.conns = o.workers
		}
		if o.phases, err = parsePhases(*phases); err == nil {
			if !*baseline {
				o.phases = slices.DeleteFunc(o.phases, func(p string) bool { return p == "baseline" })
			}
			if len(o.phases) == 0 {
				err = errors.New("no phase left to run")
			} else {
				err = bench(o)
			}
		}
	case "send":
		err = phaseSend(*db, *addr, *workers, *cpuprofile)
	case "raw":
		err = phaseRaw(*db, *addr, *workers, *n)
	case "ceiling":
		err = phaseCeiling(*db, *addr, *workers, *n, *ceilingMode, *ceilingWindow)
	case "sink":
		err = phaseSink(*addr)
	default:
		err = fmt.Errorf("unknown phase %q", *phase)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// figures are what a sending phase reports on its stdout.
type figures struct {
	Messages   int     `json:"messages"`
	Seconds    float64 `json:"seconds"`     // sending only
	QueueSecs  float64 `json:"queue_secs"`  // building the edition and queueing the ledger (engine)
	CPUMicros  float64 `json:"cpu_us"`      // user+system CPU of the whole process per message
	PeakRSSMB  float64 `json:"peak_rss_mb"` // VmHWM (else ru_maxrss)
	WireBytes  int     `json:"wire_bytes"`  // one message on the wire
	Failed     int     `json:"failed"`
	PerSecond  float64 `json:"per_second"`
	Goroutines int     `json:"-"`

	Mem *memFigures `json:"mem,omitempty"`
	// The sink's CPU while the phase ran (when this command started it):
	// per message, and as a share of one core over the sending time.
	SinkCPUMicros float64 `json:"sink_cpu_us,omitempty"`
	SinkBusy      float64 `json:"sink_busy,omitempty"`
	// Per message, of the whole process: system CPU (part of CPUMicros),
	// read and write system calls (/proc/self/io) and context switches.
	SysMicros   float64 `json:"sys_us"`
	ReadCalls   float64 `json:"read_calls"`
	WriteCalls  float64 `json:"write_calls"`
	CtxSwitches float64 `json:"ctx_switches"`
}

func (f *figures) finish() {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if m := float64(f.Messages); m > 0 {
		f.CPUMicros = float64(cpu.Microseconds()) / m
		f.SysMicros = float64(ru.Stime.Nano()) / 1e3 / m
		f.CtxSwitches = float64(ru.Nvcsw+ru.Nivcsw) / m
		r, w := ioCalls()
		f.ReadCalls, f.WriteCalls = float64(r)/m, float64(w)/m
	}
	if f.Seconds > 0 {
		f.PerSecond = float64(f.Messages) / f.Seconds
	}
	f.PeakRSSMB = float64(ru.Maxrss) / 1024 // kilobytes on Linux
	// ru_maxrss survives execve: a phase would report the parent's peak
	// (which seeded the database) if that was higher. VmHWM is this
	// process's own.
	if kb, ok := vmHWM(); ok {
		f.PeakRSSMB = float64(kb) / 1024
	}
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

// vmHWM reads this process's peak resident set size in kB from
// /proc/self/status (Linux).
func vmHWM() (int, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb, err == nil
		}
	}
	return 0, false
}

// seed writes the list, ten stories and n confirmed subscribers.
func seed(dbPath string, n int) error {
	st, err := boltstore.Open(dbPath, boltstore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.PutList(subscribers.List{
		Name: listName, Title: "The Daily", From: "The Harbour Gazette <digest@harbourgazette.example>",
		ReplyTo: "newsroom@harbourgazette.example", TopCount: 5, RecentCount: 5,
	}); err != nil {
		return err
	}
	now := time.Now()
	var arts []digest.Article
	topics := []string{"Harbour", "Council", "Weather", "Sport", "Culture", "Business", "Schools", "Transport", "Health", "Science"}
	for i := range 10 {
		link := fmt.Sprintf("https://harbourgazette.example/news/%d/story-about-%s", 2026000+i, strings.ToLower(topics[i]))
		body := strings.Repeat(fmt.Sprintf("The %s desk reports that the new plans for the quay were discussed at length by residents, traders and the harbour board on Tuesday evening. ", strings.ToLower(topics[i])), 1)
		arts = append(arts, digest.Article{
			ID: digest.ArticleID("", link), Link: link,
			Title:       fmt.Sprintf("%s: what the new quay plans mean for the town, and what happens next (%d)", topics[i], i+1),
			SummaryHTML: "<p>" + body + "</p>", SummaryText: body,
			ImageURL: fmt.Sprintf("https://harbourgazette.example/images/%d.jpg", i),
			Author:   "Harbour Gazette staff", Categories: []string{topics[i]},
			Published: now.Add(-time.Duration(i+1) * 30 * time.Minute), Views: int64(1000 * (10 - i)),
		})
	}
	if _, _, err := st.UpsertArticles(arts); err != nil {
		return err
	}
	// 10,000 rows a transaction: bbolt splits nodes only at commit, so
	// much larger transactions are slower (200,000 rows: 9 s in batches
	// of 10,000, 35 s of 100,000).
	const batch = 10000
	for lo := 0; lo < n; lo += batch {
		rows := make([]subscribers.Row, 0, batch)
		for i := lo; i < min(lo+batch, n); i++ {
			sub := subscribers.Subscriber{
				Email: fmt.Sprintf("reader%07d@example%d.org", i, i%50), Name: fmt.Sprintf("Reader %d", i),
				SendHour: -1, Frequency: subscribers.Daily,
			}
			sub.SetStatus(listName, subscribers.Confirmed, now)
			rows = append(rows, subscribers.Row{Subscriber: sub})
		}
		if _, _, _, err := st.UpsertSubscribers(rows, false); err != nil {
			return err
		}
	}
	return nil
}

// engine is the delivery engine as newsdigest send wires it.
func engine(st *boltstore.Store, addr string, workers int) (*delivery.Engine, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(portStr)
	r, err := render.New("")
	if err != nil {
		return nil, err
	}
	secret, err := st.Secret()
	if err != nil {
		return nil, err
	}
	signer, err := subscribers.NewSigner(secret)
	if err != nil {
		return nil, err
	}
	return &delivery.Engine{
		Store: st, Renderer: r, Signer: signer, Clock: digest.SystemClock{},
		BaseURL: "https://harbourgazette.example/newsletter",
		Brand: render.Brand{
			SiteName: "The Harbour Gazette", SiteURL: "https://harbourgazette.example", Lang: "en",
			LogoURL:       "https://harbourgazette.example/logo.png",
			PostalAddress: "The Harbour Gazette, 1 Quay Street, Port Example, EX1 2AB",
			Footer:        "You receive this because you subscribed to The Daily at harbourgazette.example.",
		},
		Workers: workers, Limiter: rate.NewLimiter(rate.Inf, 1), MaxRetries: 3,
		Dial: delivery.SMTPDialer(mailer.Config{Host: host, Port: port, TLS: mailer.TLSNone, Timeout: 30 * time.Second}),
	}, nil
}

// phaseSend builds the edition, queues it and delivers it.
func phaseSend(dbPath, addr string, workers int, cpuprofile string) error {
	st, err := boltstore.Open(dbPath, boltstore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	e, err := engine(st, addr, workers)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	mem := startMemSampler()
	t0 := time.Now()
	ed, _, err := e.Start(listName)
	if err != nil {
		return err
	}
	t1 := time.Now()
	res, err := e.Deliver(context.Background(), ed.ID)
	if err != nil {
		return err
	}
	f := figures{Messages: res.Sent + res.Failed, Seconds: time.Since(t1).Seconds(), QueueSecs: t1.Sub(t0).Seconds(), Failed: res.Failed}
	if f.WireBytes, err = wireSize(e, st); err != nil {
		return err
	}
	pprof.StopCPUProfile()
	f.Mem = mem.finish()
	if fi, err := os.Stat(dbPath); err == nil {
		f.Mem.DBMB = float64(fi.Size()) / mb
	}
	f.finish()
	return json.NewEncoder(os.Stdout).Encode(f)
}

// sample composes the first subscriber's copy of the newest edition, as
// the engine sends it.
func sample(e *delivery.Engine, st *boltstore.Store) (mailer.Envelope, []byte, error) {
	list, err := st.GetList(listName)
	if err != nil {
		return mailer.Envelope{}, nil, err
	}
	ed, err := e.Build(list)
	if err != nil && !errors.Is(err, delivery.ErrNothingNew) {
		return mailer.Envelope{}, nil, err
	}
	if eds, _ := st.Editions(listName); len(eds) > 0 {
		ed = eds[0]
	}
	prep, err := e.Renderer.Prepare(e.View(list, ed))
	if err != nil {
		return mailer.Envelope{}, nil, err
	}
	emails, err := st.ConfirmedEmails(listName, "", 1)
	if err != nil || len(emails) == 0 {
		return mailer.Envelope{}, nil, fmt.Errorf("no subscriber: %v", err)
	}
	sub, err := st.GetSubscriber(emails[0])
	if err != nil {
		return mailer.Envelope{}, nil, err
	}
	var buf bytes.Buffer
	env, parts, err := e.Message(list, ed, prep, sub, &buf)
	if err != nil {
		return env, nil, err
	}
	return env, bytes.Join(parts, nil), nil
}

func wireSize(e *delivery.Engine, st *boltstore.Store) (int, error) {
	_, data, err := sample(e, st)
	return len(data), err
}

// phaseRaw pushes n copies of one pre-rendered message over workers
// net/smtp connections: the most a Go client can do with these bytes.
func phaseRaw(dbPath, addr string, workers, n int) error {
	env, data, err := loadSample(dbPath, addr)
	if err != nil {
		return err
	}
	runtime.GC()
	mem := startMemSampler()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	t0 := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Quit()
			for next.Add(1) <= int64(n) {
				if err := rawOne(c, env.From, env.To[0], data); err != nil {
					failed.Add(1)
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	f := figures{Messages: n, Seconds: time.Since(t0).Seconds(), WireBytes: len(data), Failed: int(failed.Load())}
	select {
	case err := <-errs:
		return fmt.Errorf("net/smtp: %w", err)
	default:
	}
	f.Mem = mem.finish()
	f.finish()
	return json.NewEncoder(os.Stdout).Encode(f)
}

// loadSample composes the message the raw phases send, from the database
// (which it then closes).
func loadSample(dbPath, addr string) (mailer.Envelope, []byte, error) {
	st, err := boltstore.Open(dbPath, boltstore.Options{})
	if err != nil {
		return mailer.Envelope{}, nil, err
	}
	defer st.Close()
	e, err := engine(st, addr, 1)
	if err != nil {
		return mailer.Envelope{}, nil, err
	}
	return sample(e, st)
}

func rawOne(c *smtp.Client, from, to string, data []byte) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Close()
}

// sinkProc is a discard server running in its own process.
type sinkProc struct {
	addr, name string
	pid        int
	stop       func()
}

// startSink starts the discard server in its own process.
func startSink(kind string) (*sinkProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	var name string
	ln.Close()
	const smtpSink = "/usr/sbin/smtp-sink"
	if kind == "auto" {
		kind = "go"
		if _, err := os.Stat(smtpSink); err == nil {
			kind = "smtp-sink"
		}
	}
	var cmd *exec.Cmd
	switch kind {
	case "smtp-sink":
		u := "nobody"
		if cur, err := user.Current(); err == nil {
			u = cur.Username
		}
		cmd = exec.Command(smtpSink, "-u", u, addr, "1000")
		name = "smtp-sink (Postfix) at " + addr
	case "go":
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(self, "-phase", "sink", "-smtp", addr)
		name = "Go sink (go-smtp) at " + addr
	default:
		return nil, fmt.Errorf("-sink %q: want auto, smtp-sink or go", kind)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", kind, err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return &sinkProc{addr: addr, name: name, pid: cmd.Process.Pid, stop: stop}, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s did not start listening on %s", kind, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// phaseSink is the Go discard server: it accepts every message and keeps
// nothing.
func phaseSink(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := gosmtp.NewServer(sinkBackend{})
	s.Domain = "sink.localhost"
	s.MaxMessageBytes = 32 << 20
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	s.ErrorLog = log.New(io.Discard, "", 0)
	return s.Serve(ln)
}

type sinkBackend struct{}

func (sinkBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return sinkSession{}, nil }

type sinkSession struct{}

func (sinkSession) Reset()                                 {}
func (sinkSession) Logout() error                          { return nil }
func (sinkSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (sinkSession) Data(r io.Reader) error                 { _, err := io.Copy(io.Discard, r); return err }
