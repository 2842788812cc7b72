package main

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"newsdigest/digest/capture"
)

func TestDotStuff(t *testing.T) {
	for in, want := range map[string]string{
		"a\r\nb\r\n":          "a\r\nb\r\n",
		".a\r\n..b\r\nc.\r\n": "..a\r\n...b\r\nc.\r\n",
		"a\nb":                "a\r\nb\r\n",
		".":                   "..\r\n",
		"a\r\n.\r\n":          "a\r\n..\r\n",
	} {
		if got := string(dotStuff([]byte(in))); got != want {
			t.Errorf("dotStuff(%q) = %q, want %q", in, got, want)
		}
	}
}

// The ceiling clients deliver every message intact, once, to a real SMTP
// server, whichever connection takes it.
func TestCeilingClients(t *testing.T) {
	msg := "From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\n.starts with a dot\r\n.\r\nlast line without an end"
	want := "From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\n.starts with a dot\r\n.\r\nlast line without an end\r\n"
	cmds := []byte("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
	for _, mode := range []string{"pipelined", "nowait"} {
		t.Run(mode, func(t *testing.T) {
			srv, err := capture.Start("127.0.0.1:0", "")
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			const n, conns = 23, 4
			var next, sent atomic.Int64
			claim := func() bool { return next.Add(1) <= n }
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for range conns {
				wg.Go(func() {
					if mode == "nowait" {
						errs <- pushNoWait(srv.Addr(), cmds, dotStuff([]byte(msg)), 3, claim, &sent)
					} else {
						errs <- pushPipelined(srv.Addr(), cmds, dotStuff([]byte(msg)), claim, &sent)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if sent.Load() != n || srv.Count() != n {
				t.Fatalf("client counted %d, server got %d, want %d", sent.Load(), srv.Count(), n)
			}
			for _, m := range srv.Messages() {
				if string(m.Data) != want || m.From != "a@example.org" || len(m.To) != 1 || m.To[0] != "b@example.org" {
					t.Fatalf("server got from %s to %v:\n%q\nwant\n%q", m.From, m.To, m.Data, want)
				}
			}
		})
	}
}

// A refused recipient stops the client with the server's reply.
func TestCeilingClientRefused(t *testing.T) {
	srv, err := capture.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetReply(func(from, to string) error { return errors.New("no such user") })
	var next, sent atomic.Int64
	err = pushPipelined(srv.Addr(), []byte("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"), []byte("x\r\n"),
		func() bool { return next.Add(1) <= 3 }, &sent)
	if err == nil || !strings.Contains(err.Error(), "want 250") || sent.Load() != 0 {
		t.Fatalf("err %v, sent %d; want a refusal and nothing sent", err, sent.Load())
	}
}

func TestParsePhases(t *testing.T) {
	got, err := parsePhases("engine, ceiling")
	if err != nil || strings.Join(got, ",") != "engine,ceiling" {
		t.Errorf("parsePhases = %v, %v", got, err)
	}
	for _, bad := range []string{"", "engine,engine", "ceiling,nope"} {
		if _, err := parsePhases(bad); err == nil {
			t.Errorf("parsePhases(%q) took it", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	fs := []*figures{
		{PerSecond: 3, Messages: 10, Mem: &memFigures{VmHWMMB: 5}},
		{PerSecond: 1, Messages: 10, Mem: &memFigures{VmHWMMB: 9}},
		{PerSecond: 2, Messages: 10, Mem: &memFigures{VmHWMMB: 7}},
	}
	m := median(fs)
	if m.PerSecond != 2 || m.Messages != 10 || m.Mem.VmHWMMB != 7 || fs[0].Mem.VmHWMMB != 5 {
		t.Errorf("median = %+v %+v", m, m.Mem)
	}
	if got := medianOf([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("medianOf = %v, want 2.5", got)
	}
}
