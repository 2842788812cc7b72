package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the parent's flags.
type options struct {
	n, workers, conns, rounds int
	addr, sinkKind, dir       string
	phases                    []string
	cpuprofile                string
	jsonOut, verbose          bool
	ceilingMode               string
	ceilingWindow             int
}

var phaseNames = []string{"ceiling", "engine", "baseline"}

// parsePhases reads -phases: names from phaseNames, comma-separated, run
// in the order given.
func parsePhases(s string) ([]string, error) {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(phaseNames, p) {
			return nil, fmt.Errorf("-phases: unknown phase %q (want some of %s)", p, strings.Join(phaseNames, ","))
		}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("-phases: %q twice", p)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("-phases: no phase to run")
	}
	return out, nil
}

// round is one run of each phase.
type round map[string]*figures

func bench(o options) error {
	if o.n < 1 || o.workers < 1 || o.conns < 1 || o.rounds < 1 {
		return errors.New("-n, -workers, -conns and -rounds must be at least 1")
	}
	if o.dir == "" {
		tmp, err := os.MkdirTemp("", "newsdigest-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		onSignal(func() { os.RemoveAll(tmp) })
		o.dir = tmp
	}
	dbPath := filepath.Join(o.dir, "bench.db")
	os.Remove(dbPath)
	t0 := time.Now()
	if err := seed(dbPath, o.n); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	seedSecs := time.Since(t0).Seconds()
	fmt.Fprintf(os.Stderr, "seeded %d confirmed subscribers in %.1f s\n", o.n, seedSecs)

	sinkName, sinkPID := o.addr, 0
	if o.addr == "" {
		s, err := startSink(o.sinkKind)
		if err != nil {
			return err
		}
		defer s.stop()
		onSignal(s.stop)
		o.addr, sinkName, sinkPID = s.addr, s.name, s.pid
	}
	var rounds []round
	for r := range o.rounds {
		rd := round{}
		for _, p := range o.phases {
			f, err := o.runPhase(p, r, dbPath, sinkName, sinkPID)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			rd[p] = f
		}
		rounds = append(rounds, rd)
	}
	med := round{}
	for _, p := range o.phases {
		var fs []*figures
		for _, rd := range rounds {
			fs = append(fs, rd[p])
		}
		med[p] = median(fs)
	}
	ratio := func(a, b string) (float64, bool) {
		if med[a] == nil || med[b] == nil {
			return 0, false
		}
		var rs []float64
		for _, rd := range rounds {
			rs = append(rs, rd[a].PerSecond/rd[b].PerSecond)
		}
		return medianOf(rs), true
	}
	ceilingRatio, okC := ratio("engine", "ceiling")
	baseRatio, okB := ratio("engine", "baseline")
	if o.jsonOut {
		out := map[string]any{"subscribers": o.n, "workers": o.workers, "ceiling_conns": o.conns, "sink": sinkName,
			"cpus": runtime.NumCPU(), "rounds": o.rounds, "seed_secs": seedSecs}
		for p, f := range med {
			out[p] = f
		}
		if okB {
			out["ratio"] = baseRatio
		}
		if okC {
			out["ceiling_ratio"] = ceilingRatio
		}
		if o.rounds > 1 {
			out["each_round"] = rounds
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := os.Stdout
	conns := ""
	if slices.Contains(o.phases, "ceiling") || slices.Contains(o.phases, "baseline") {
		conns = fmt.Sprintf(", %d connections (ceiling, baseline)", o.conns)
	}
	fmt.Fprintf(w, "newsdigest-bench: %d subscribers, %d workers%s, sink %s, %d CPUs, %s, GOGC=%s GOMEMLIMIT=%s\n",
		o.n, o.workers, conns, sinkName, runtime.NumCPU(), runtime.Version(), orDefault(os.Getenv("GOGC")), orDefault(os.Getenv("GOMEMLIMIT")))
	if o.rounds > 1 {
		fmt.Fprintf(w, "median of %d rounds (each runs %s in this order)\n", o.rounds, strings.Join(o.phases, ", "))
	}
	fmt.Fprintf(w, "%-12s %8s %11s %12s %11s %7s %16s %10s\n", "", "msg/s", "CPU µs/msg", "peak RSS MB", "wire bytes", "failed", "sink CPU µs/msg", "sink busy")
	row := func(name string, f *figures) {
		sinkCPU, busy := "-", "-"
		if f.SinkCPUMicros > 0 {
			sinkCPU, busy = fmt.Sprintf("%.1f", f.SinkCPUMicros), fmt.Sprintf("%.0f %%", 100*f.SinkBusy)
		}
		fmt.Fprintf(w, "%-12s %8.0f %11.1f %12.1f %11d %7d %16s %10s\n", name, f.PerSecond, f.CPUMicros, f.PeakRSSMB, f.WireBytes, f.Failed, sinkCPU, busy)
	}
	if o.verbose && o.rounds > 1 {
		for i, rd := range rounds {
			for _, p := range o.phases {
				row(fmt.Sprintf("%s #%d", p, i+1), rd[p])
			}
		}
	}
	for _, p := range o.phases {
		row(p, med[p])
	}
	if okC {
		fmt.Fprintf(w, "engine/ceiling throughput: %.0f %% (brief: at least 85 %%)\n", 100*ceilingRatio)
	}
	if okB {
		fmt.Fprintf(w, "engine/baseline throughput: %.0f %%\n", 100*baseRatio)
	}
	if e := med["engine"]; e != nil {
		fmt.Fprintf(w, "engine: %.2f s to build the edition and queue %d ledger rows, %.2f s to send\n", e.QueueSecs, o.n, e.Seconds)
	}
	printMem(w, o.phases, med)
	fmt.Fprintf(w, "\nper message   %7s %7s %7s %7s %13s\n", "CPU µs", "sys µs", "reads", "writes", "ctx switches")
	for _, p := range o.phases {
		f := med[p]
		fmt.Fprintf(w, "%-13s %7.1f %7.1f %7.2f %7.2f %13.2f\n", p, f.CPUMicros, f.SysMicros, f.ReadCalls, f.WriteCalls, f.CtxSwitches)
	}
	fmt.Fprintln(w, "(whole process; reads and writes: system calls, sockets and files; ctx switches: voluntary and not)")
	return nil
}

var (
	cleanMu  sync.Mutex
	cleanups []func()
	sigOnce  sync.Once
)

// onSignal runs clean (after those added before) when SIGINT or SIGTERM
// stops the bench; the phases' processes die with it (dieWithParent).
func onSignal(clean func()) {
	cleanMu.Lock()
	cleanups = append(cleanups, clean)
	cleanMu.Unlock()
	sigOnce.Do(func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt, syscall.SIGTERM)
		go func() {
			sig := <-c
			cleanMu.Lock()
			for _, clean := range cleanups {
				clean()
			}
			fmt.Fprintf(os.Stderr, "newsdigest-bench: stopped by %v\n", sig)
			os.Exit(1)
		}()
	})
}

// runPhase runs one phase of round r in a child process; the engine gets
// a fresh copy of the seeded database when there are several rounds.
func (o options) runPhase(p string, r int, dbPath, sinkName string, sinkPID int) (*figures, error) {
	db, conns := dbPath, o.conns
	var what string
	switch p {
	case "ceiling":
		what = fmt.Sprintf("%d pre-rendered messages, pipelined, over %d connections", o.n, conns)
		if o.ceilingMode != "pipelined" {
			what = fmt.Sprintf("%d pre-rendered messages, %s (window %d), over %d connections", o.n, o.ceilingMode, o.ceilingWindow, conns)
		}
	case "baseline":
		what = fmt.Sprintf("%d pre-rendered messages over %d net/smtp connections", o.n, conns)
	case "engine":
		what = fmt.Sprintf("%d subscribers, %d workers", o.n, o.workers)
		conns = o.workers
		if o.rounds > 1 {
			db = filepath.Join(o.dir, "engine.db")
			if err := copyFile(dbPath, db); err != nil {
				return nil, err
			}
		}
	}
	fmt.Fprintf(os.Stderr, "round %d, %s: %s to %s\n", r+1, p, what, sinkName)
	before := procCPU(sinkPID)
	f, err := o.child(p, db, conns)
	if err != nil {
		return nil, err
	}
	if sinkPID != 0 && f.Messages > 0 && f.Seconds > 0 {
		cpu := procCPU(sinkPID) - before
		f.SinkCPUMicros = float64(cpu.Microseconds()) / float64(f.Messages)
		f.SinkBusy = cpu.Seconds() / f.Seconds
	}
	return f, nil
}

// childPhase maps a phase to the name of its -phase flag value.
var childPhase = map[string]string{"engine": "send", "baseline": "raw", "ceiling": "ceiling"}

// child runs one phase in a new process and returns its figures.
func (o options) child(phase, dbPath string, conns int) (*figures, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-phase", childPhase[phase], "-db", dbPath, "-smtp", o.addr,
		"-workers", strconv.Itoa(conns), "-n", strconv.Itoa(o.n),
		"-ceiling-mode", o.ceilingMode, "-ceiling-window", strconv.Itoa(o.ceilingWindow)}
	if o.cpuprofile != "" && phase == "engine" {
		args = append(args, "-cpuprofile", o.cpuprofile)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	dieWithParent(cmd)
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var f figures
	if err := json.Unmarshal(out, &f); err != nil {
		return nil, fmt.Errorf("reading the %s phase's figures %q: %w", phase, out, err)
	}
	return &f, nil
}

func printMem(w io.Writer, phases []string, med round) {
	fmt.Fprintf(w, "\nmemory, MB    %7s %7s %7s %7s %7s %16s %16s %14s\n", "VmHWM", "VmRSS", "anon", "file", "shmem", "heap sys/inuse", "max sys/inuse", "max anon/file")
	db := 0.0
	for _, p := range phases {
		m := med[p].Mem
		if m == nil {
			continue
		}
		fmt.Fprintf(w, "%-13s %7.1f %7.1f %7.1f %7.1f %7.1f %16s %16s %14s\n", p, m.VmHWMMB, m.VmRSSMB, m.RssAnonMB, m.RssFileMB, m.RssShmemMB,
			fmt.Sprintf("%.1f/%.1f", m.HeapSysMB, m.HeapInuseMB), fmt.Sprintf("%.1f/%.1f", m.MaxHeapSysMB, m.MaxHeapInuseMB),
			fmt.Sprintf("%.1f/%.1f", m.MaxRssAnonMB, m.MaxRssFileMB))
		db = max(db, m.DBMB)
	}
	fmt.Fprintln(w, "(VmRSS = anon + file + shmem at the end of the phase: anon: Go's heap and stacks; file: the mapped bbolt file and the executable;")
	fmt.Fprintln(w, " max: largest of the samples taken every 50 ms)")
	if db > 0 {
		fmt.Fprintf(w, "database file after the engine phase: %.1f MB\n", db)
	}
}

// median returns the median of each number in fs (for an even count, the
// mean of the middle two), field by field, including those of Mem.
func median(fs []*figures) *figures {
	if len(fs) == 1 {
		return fs[0]
	}
	out := *fs[0]
	medianFields(reflect.ValueOf(&out).Elem(), func(i int) reflect.Value { return reflect.ValueOf(fs[i]).Elem() }, len(fs))
	if out.Mem != nil {
		m := *out.Mem
		medianFields(reflect.ValueOf(&m).Elem(), func(i int) reflect.Value { return reflect.ValueOf(fs[i].Mem).Elem() }, len(fs))
		out.Mem = &m
	}
	return &out
}

func medianFields(dst reflect.Value, src func(int) reflect.Value, n int) {
	for j := range dst.NumField() {
		fd := dst.Field(j)
		switch fd.Kind() {
		case reflect.Float64, reflect.Int:
			vs := make([]float64, n)
			for i := range n {
				v := src(i).Field(j)
				if v.Kind() == reflect.Int {
					vs[i] = float64(v.Int())
				} else {
					vs[i] = v.Float()
				}
			}
			if fd.Kind() == reflect.Int {
				fd.SetInt(int64(medianOf(vs) + 0.5))
			} else {
				fd.SetFloat(medianOf(vs))
			}
		}
	}
}

func medianOf(vs []float64) float64 {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if n := len(vs); n%2 == 1 {
		return vs[n/2]
	} else {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
}

// procCPU is the user+system CPU time process pid has used so far
// (/proc/PID/stat, in clock ticks of 1/100 s); 0 for pid 0 or when it
// cannot be read.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 { // fields[0] is the state, field 3 of the file
		return 0
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
