package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The ceiling phase measures what the sink itself can take: a minimal
// SMTP client pushes n copies of the engine's message, dot-stuffed once up
// front, over conns connections as fast as the sink answers. With
// PIPELINING (RFC 2920) each connection says EHLO once; for each message
// it then writes the body and its terminator together with the next
// message's MAIL FROM, RCPT TO and DATA in one write (the message content
// may start a command group, RFC 2920 section 3.1) and reads the message's
// 250 and the next three replies. One write and one round trip per
// message; nothing is sent before the server's 354 asks for it.
//
// The "nowait" mode, for comparison only, breaks RFC 2920: it writes
// whole transactions (MAIL, RCPT, DATA, content, terminator) without
// waiting for 354, with up to window of them unanswered per connection.

const ceilingTimeout = 30 * time.Second

// phaseCeiling is the ceiling phase's process.
func phaseCeiling(dbPath, addr string, conns, n int, mode string, window int) error {
	env, data, err := loadSample(dbPath, addr)
	if err != nil {
		return err
	}
	if mode != "pipelined" && mode != "nowait" {
		return fmt.Errorf("-ceiling-mode %q: want pipelined or nowait", mode)
	}
	window = max(window, 1)
	body := dotStuff(data)
	cmds := []byte("MAIL FROM:<" + env.From + ">\r\nRCPT TO:<" + env.To[0] + ">\r\nDATA\r\n")
	runtime.GC()
	mem := startMemSampler()
	var next, sent atomic.Int64
	claim := func() bool { return next.Add(1) <= int64(n) }
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	t0 := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if mode == "nowait" {
				err = pushNoWait(addr, cmds, body, window, claim, &sent)
			} else {
				err = pushPipelined(addr, cmds, body, claim, &sent)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	f := figures{Messages: int(sent.Load()), Seconds: time.Since(t0).Seconds(), WireBytes: len(data)}
	f.Failed = n - f.Messages
	select {
	case err := <-errs:
		return fmt.Errorf("ceiling client: %w", err)
	default:
	}
	f.Mem = mem.finish()
	f.finish()
	return json.NewEncoder(os.Stdout).Encode(f)
}

// dotStuff returns the message as it goes on the wire after DATA, without
// the terminator: lines end in CRLF (a bare LF becomes CRLF, as net/smtp's
// writer does), a line that starts with a dot gets another, and the last
// line ends in CRLF.
func dotStuff(data []byte) []byte {
	out := make([]byte, 0, len(data)+len(data)/64+2)
	bol := true
	for i, c := range data {
		if bol && c == '.' {
			out = append(out, '.')
		}
		if c == '\n' && (i == 0 || data[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
		bol = c == '\n'
	}
	if !bol {
		out = append(out, '\r', '\n')
	}
	return out
}

// session is one connection of the ceiling client.
type session struct {
	c  net.Conn
	br *bufio.Reader
}

// dial connects, reads the greeting and says EHLO; the server must
// offer PIPELINING.
func dial(addr string) (*session, error) {
	c, err := net.DialTimeout("tcp", addr, ceilingTimeout)
	if err != nil {
		return nil, err
	}
	s := &session{c: c, br: bufio.NewReaderSize(c, 4096)}
	c.SetDeadline(time.Now().Add(ceilingTimeout))
	if _, err := s.expect(220); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := c.Write([]byte("EHLO bench.localhost\r\n")); err != nil {
		c.Close()
		return nil, err
	}
	text, err := s.expect(250)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	if !strings.Contains(strings.ToUpper(text), "\nPIPELINING") {
		c.Close()
		return nil, fmt.Errorf("%s does not offer PIPELINING (EHLO said %q)", addr, text)
	}
	return s, nil
}

// expect reads one reply, which may span several lines, and fails
// unless its code is want. It returns the reply's text, one line per
// line, each after a newline.
func (s *session) expect(want int) (string, error) {
	var text strings.Builder
	for {
		line, err := s.br.ReadSlice('\n')
		if err != nil {
			return "", fmt.Errorf("reading a reply: %w", err)
		}
		if len(line) < 4 || line[0] < '0' || line[0] > '9' {
			return "", fmt.Errorf("malformed reply %q", line)
		}
		code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if code != want {
			return "", fmt.Errorf("want %d, server said %q", want, bytes.TrimSpace(line))
		}
		text.WriteByte('\n')
		text.Write(bytes.TrimRight(line[4:], "\r\n"))
		if line[3] != '-' {
			return text.String(), nil
		}
	}
}

// pushPipelined sends messages over one connection while claim grants
// them, legally pipelined.
func pushPipelined(addr string, cmds, body []byte, claim func() bool, sent *atomic.Int64) error {
	s, err := dial(addr)
	if err != nil {
		return err
	}
	defer s.c.Close()
	if !claim() {
		s.c.Write([]byte("QUIT\r\n"))
		return nil
	}
	// Two ready-made writes: the content followed by the next message's
	// commands, or by QUIT after the last one.
	more := append(append(append(make([]byte, 0, len(body)+5+len(cmds)), body...), ".\r\n"...), cmds...)
	last := append(append(append(make([]byte, 0, len(body)+11), body...), ".\r\n"...), "QUIT\r\n"...)
	if _, err := s.c.Write(cmds); err != nil {
		return err
	}
	for _, code := range []int{250, 250, 354} {
		if _, err := s.expect(code); err != nil {
			return err
		}
	}
	for {
		s.c.SetDeadline(time.Now().Add(ceilingTimeout))
		again := claim()
		w := last
		if again {
			w = more
		}
		if _, err := s.c.Write(w); err != nil {
			return err
		}
		if _, err := s.expect(250); err != nil {
			return fmt.Errorf("end of data: %w", err)
		}
		sent.Add(1)
		if !again {
			_, err := s.expect(221)
			return err
		}
		for _, code := range []int{250, 250, 354} {
			if _, err := s.expect(code); err != nil {
				return err
			}
		}
	}
}

// pushNoWait sends whole transactions without waiting for 354, up to
// window of them unanswered (not RFC 2920: for comparison only).
func pushNoWait(addr string, cmds, body []byte, window int, claim func() bool, sent *atomic.Int64) error {
	s, err := dial(addr)
	if err != nil {
		return err
	}
	defer s.c.Close()
	s.c.SetDeadline(time.Time{})
	txn := append(append(append(make([]byte, 0, len(cmds)+len(body)+3), cmds...), body...), ".\r\n"...)
	inflight := make(chan struct{}, window-1) // plus the one the reader holds
	werr := make(chan error, 1)
	go func() {
		defer close(inflight)
		for claim() {
			inflight <- struct{}{}
			if _, err := s.c.Write(txn); err != nil {
				werr <- err
				return
			}
		}
		// Closed channel tells the reader no more replies are coming.
	}()
	var rerr error
	for range inflight {
		for _, code := range []int{250, 250, 354, 250} {
			if _, err := s.expect(code); err != nil && rerr == nil {
				rerr = err
				s.c.Close() // unblocks the writer
			}
		}
		if rerr == nil {
			sent.Add(1)
		}
	}
	select {
	case err := <-werr:
		return errors.Join(rerr, err)
	default:
	}
	if rerr != nil {
		return rerr
	}
	s.c.Write([]byte("QUIT\r\n"))
	_, err = s.expect(221)
	return err
}
