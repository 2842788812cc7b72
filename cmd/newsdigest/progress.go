package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress shows a send's progress: a bar with rate and ETA redrawn in
// place on a terminal, and a log line every few seconds otherwise.
type progress struct {
	w       io.Writer
	tty     bool
	start   time.Time
	mu      sync.Mutex
	last    time.Time
	label   string
	every   time.Duration
	printed bool
}

func newProgress(w io.Writer, label string) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	every := 5 * time.Second
	if tty {
		every = 100 * time.Millisecond
	}
	return &progress{w: w, tty: tty, start: time.Now(), label: label, every: every}
}

// update is called with the messages done and the total.
func (p *progress) update(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	eta := "-"
	if rate > 0 && done < total {
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	if p.tty {
		const width = 30
		filled := width * done / max(total, 1)
		fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d %.0f msg/s ETA %s ", p.label,
			strings.Repeat("█", filled), strings.Repeat("░", width-filled), done, total, rate, eta)
		p.printed = true
		if done == total {
			fmt.Fprintln(p.w)
			p.printed = false
		}
		return
	}
	fmt.Fprintf(p.w, "%s: %d/%d sent, %.0f msg/s, ETA %s\n", p.label, done, total, rate, eta)
}

// finish ends the bar's line if one is open.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.printed {
		fmt.Fprintln(p.w)
	}
}
