package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"slices"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Envelope is the SMTP envelope of an encoded message.
type Envelope struct {
	From      string   // MAIL FROM: bare address (the Return-Path)
	To        []string // RCPT TO: bare addresses
	MessageID string   // the message's Message-ID with <>, for errors and the ledger
}

// Encode writes m to buf (reset first) exactly as it goes on the wire, CRLF
// line ends, and returns its envelope. Sign the bytes (DKIM) and hand them
// to Conn.SendRaw: what was signed is what is sent.
//
// The output is byte for byte what m.WriteTo writes. go-mail composes the
// headers and the MIME structure; the quoted-printable bodies are encoded
// here in one pass (see encodeParts), which is most of the cost saved.
// m must be a message from Build (no go-mail DKIM or S/MIME), and must not
// be used by another goroutine during the call: its parts' body writers
// are swapped for placeholders while it is written.
func Encode(m *gomail.Msg, buf *bytes.Buffer) (Envelope, error) {
	from, err := m.GetSender(false)
	if err != nil {
		return Envelope{}, fmt.Errorf("mailer: envelope sender: %w", err)
	}
	to, err := m.GetRecipients()
	if err != nil {
		return Envelope{}, fmt.Errorf("mailer: envelope recipients: %w", err)
	}
	if err := encodeParts(m, buf); err != nil {
		return Envelope{}, fmt.Errorf("mailer: encoding the message: %w", err)
	}
	b := buf.Bytes()
	// go-mail writes CRLF after every header and QP body line; equal
	// counts of CR and LF (two vectorized scans) confirm it cheaply.
	if bytes.Count(b, []byte("\n")) != bytes.Count(b, []byte("\r")) {
		return Envelope{}, errors.New("mailer: encoding the message: bare CR or LF in the output")
	}
	env := Envelope{From: bare(from), To: make([]string, len(to)), MessageID: m.GetMessageID()}
	for i, a := range to {
		env.To[i] = bare(a)
	}
	return env, nil
}

// bare strips the angle brackets go-mail puts around envelope addresses.
func bare(a string) string {
	return strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">")
}

// SendRaw sends one encoded message (the concatenation of parts, CRLF line
// ends, e.g. a DKIM-Signature field and the message) on the held session,
// pipelining MAIL, RCPT and DATA when the server offers PIPELINING. It
// returns nil once the server accepted the message, else a *SendError.
//
// A session found broken before the message could reach the server is
// redialled once and the message tried on the new one; a connection lost
// after the body's final dot is reported as Temporary (the server may or
// may not have kept the message) and the session is redialled on the next
// call. ctx bounds dialling; each SMTP step is bounded by Config.Timeout.
func (c *Conn) SendRaw(ctx context.Context, env Envelope, parts ...[]byte) error {
	return c.SendRawThen(ctx, env, nil, parts...)
}

// SendRawThen is SendRaw that, when the server offers PIPELINING, also
// starts the transaction of the message to be sent next: next's MAIL,
// RCPT and DATA go out in the same write as this message's content (RFC
// 2920 allows content to begin a command group), so each message costs
// one write and one wait for replies instead of two of each. Their
// replies are read by the next call, which should send next; a call for
// another envelope (or Close) first winds the started transaction up
// without sending anything in it. next is only an announcement: it is
// not accepted until its own call returns nil.
func (c *Conn) SendRawThen(ctx context.Context, env Envelope, next *Envelope, parts ...[]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendLocked(ctx, env, next, parts, false)
}

// BeginRaw is the first half of SendRawThen: it starts env's transaction
// and writes the whole content but its final terminator, so the server
// reads and checks the content while the caller does something else (the
// engine waits for its ledger). The server cannot accept the message
// before FinishRaw; AbortRaw (or Close) ends the session instead, and the
// server drops the unfinished transaction. A session found broken first
// is redialled once, as in SendRaw.
func (c *Conn) BeginRaw(ctx context.Context, env Envelope, parts ...[]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendLocked(ctx, env, nil, parts, true)
}

// FinishRaw sends the terminator of the transaction BeginRaw started,
// with next's MAIL, RCPT and DATA when next is set (see SendRawThen), and
// returns nil once the server accepted the message, else a *SendError.
func (c *Conn) FinishRaw(ctx context.Context, next *Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	env := c.begun
	if env == nil || c.session == nil {
		return &SendError{Temporary: true, Reply: "not sent: no transaction begun"}
	}
	c.begun = nil
	if next != nil && checkEnvelope(*next) != nil {
		next = nil
	}
	se := c.finish(next)
	if se == nil {
		return nil
	}
	se.MessageID = env.MessageID
	if se.Code == 0 && se.Temporary {
		c.drop()
	}
	return se
}

// AbortRaw gives up the transaction BeginRaw started: the session ends
// (after DATA, only that stops a server from taking the message).
func (c *Conn) AbortRaw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.begun != nil {
		c.drop()
	}
}

// sendLocked is SendRawThen, or BeginRaw when begin is set.
func (c *Conn) sendLocked(ctx context.Context, env Envelope, next *Envelope, parts [][]byte, begin bool) error {
	if c.closed {
		return errors.New("mailer: send on a closed connection")
	}
	if c.begun != nil {
		c.drop() // a begun transaction left unfinished: never send it
	}
	if err := checkEnvelope(env); err != nil {
		return &SendError{MessageID: env.MessageID, Reply: err.Error()}
	}
	if next != nil && checkEnvelope(*next) != nil {
		next = nil // it will be refused by its own call
	}
	if err := ctx.Err(); err != nil {
		return &SendError{MessageID: env.MessageID, Temporary: true, Reply: "not sent: " + err.Error(), Err: err}
	}
	redialled := false
	for {
		if c.session == nil {
			if redialled {
				return &SendError{MessageID: env.MessageID, Temporary: true, Reply: "not sent: the SMTP session is down"}
			}
			redialled = true
			if err := c.dial(ctx); err != nil {
				se := err.(*SendError)
				se.MessageID = env.MessageID
				return se
			}
		}
		se, early := c.transact(env, next, parts, begin)
		if se == nil {
			return nil
		}
		se.MessageID = env.MessageID
		if se.Code == 0 && se.Temporary {
			c.drop() // no reply: the session is gone
			if early && !redialled {
				continue // the message never reached the server
			}
		}
		return se
	}
}

// checkEnvelope refuses addresses that would break the SMTP commands.
func checkEnvelope(env Envelope) error {
	if len(env.To) == 0 {
		return errors.New("no recipient")
	}
	if a := env.From; a == "" || strings.ContainsAny(a, "\r\n<>") {
		return fmt.Errorf("bad envelope address %q", a)
	}
	for _, a := range env.To {
		if a == "" || strings.ContainsAny(a, "\r\n<>") {
			return fmt.Errorf("bad envelope address %q", a)
		}
	}
	return nil
}

// appendCommands appends env's MAIL, RCPT and DATA commands.
func appendCommands(dst []byte, env *Envelope) []byte {
	dst = append(dst, "MAIL FROM:<"...)
	dst = append(dst, env.From...)
	dst = append(dst, ">\r\n"...)
	for _, to := range env.To {
		dst = append(dst, "RCPT TO:<"...)
		dst = append(dst, to...)
		dst = append(dst, ">\r\n"...)
	}
	return append(dst, "DATA\r\n"...)
}

func sameEnvelope(a, b *Envelope) bool {
	return a.From == b.From && slices.Equal(a.To, b.To)
}

// readCommandReplies reads the replies to the MAIL, RCPT… and DATA of a
// transaction with rcpts recipients. dataOpen: the server answered DATA
// with 354. first is the first failure; a failure with no reply (Code 0)
// means the session is gone.
func readCommandReplies(t *textproto.Conn, rcpts int) (dataOpen bool, first *SendError) {
	n := rcpts + 2
	for i := range n {
		want := 25 // 250 or 251
		switch i {
		case 0:
			want = 250
		case n - 1:
			want = 354
		}
		code, msg, err := readReply(t, want)
		if err != nil {
			if code == 0 {
				return false, ioError(err)
			}
			if first == nil {
				first = replyError(code, msg, err)
			}
			continue
		}
		if i == n-1 {
			dataOpen = true
		}
	}
	return dataOpen, first
}

// settlePre winds up a transaction started for a message that is not the
// one being sent: after a 354 nothing can be taken back but by ending the
// session; otherwise RSET. It reports a failure that ended the session.
func (c *Conn) settlePre(t *textproto.Conn, pre *Envelope) *SendError {
	dataOpen, first := readCommandReplies(t, len(pre.To))
	switch {
	case first != nil && first.Code == 0:
		return first
	case dataOpen:
		c.drop()
		return &SendError{Temporary: true, Reply: "not sent: a transaction started for another message had to be abandoned"}
	}
	if err := c.reset(t); err != nil {
		return ioError(err)
	}
	return nil
}

// transact runs one mail transaction and, when next is set and the server
// pipelines, starts next's. early reports a failure before the body's
// final dot was written, when the server cannot have the message.
func (c *Conn) transact(env Envelope, next *Envelope, parts [][]byte, begin bool) (se *SendError, early bool) {
	s := c.session
	if err := s.UpdateDeadline(c.timeout()); err != nil {
		return ioError(err), true
	}
	if c.pipelining == nil {
		ok, _ := s.Extension("PIPELINING")
		c.pipelining = &ok
	}
	t := s.Text
	started := false // env's commands went out with the previous message
	if pre := c.pre; pre != nil {
		c.pre = nil
		if sameEnvelope(pre, &env) {
			started = true
		} else if se := c.settlePre(t, pre); se != nil {
			return se, true
		}
	}
	var first *SendError
	dataOpen := false
	if *c.pipelining {
		if !started {
			c.data = appendCommands(c.data[:0], &env)
			if _, err := t.W.Write(c.data); err != nil {
				return ioError(err), true
			}
			if err := t.W.Flush(); err != nil {
				return ioError(err), true
			}
		}
		dataOpen, first = readCommandReplies(t, len(env.To))
		if first != nil && first.Code == 0 {
			return first, true
		}
	} else {
		cmds := make([]string, 0, 2+len(env.To))
		cmds = append(cmds, "MAIL FROM:<"+env.From+">")
		for _, to := range env.To {
			cmds = append(cmds, "RCPT TO:<"+to+">")
		}
		cmds = append(cmds, "DATA")
		for i, cmd := range cmds {
			want := 25 // 250 or 251
			switch i {
			case 0:
				want = 250
			case len(cmds) - 1:
				want = 354
			}
			t.W.WriteString(cmd)
			t.W.WriteString("\r\n")
			if err := t.W.Flush(); err != nil {
				return ioError(err), true
			}
			code, msg, err := readReply(t, want)
			if err != nil {
				if code == 0 {
					return ioError(err), true
				}
				first = replyError(code, msg, err)
				break
			}
			if i == len(cmds)-1 {
				dataOpen = true
			}
		}
	}
	if first != nil {
		if dataOpen {
			// The server took DATA although a command before it failed:
			// end the session rather than send anything.
			c.drop()
			return first, true
		}
		if err := c.reset(t); err != nil {
			c.drop()
		}
		return first, true
	}
	// The whole DATA content, terminator included, and the next
	// message's commands in one buffer: with t.W empty (flushed above),
	// bufio hands it to the connection in one write.
	if begin {
		// Everything but the terminator: the server cannot take the
		// message yet, so a failure here is still early. One slice
		// into the empty t.W: bufio hands one of 4 KB or more straight
		// to the connection, a smaller one at Flush, so the content
		// goes out in one write either way.
		if _, err := t.W.Write(c.content(parts)); err != nil {
			return ioError(err), true
		}
		if err := t.W.Flush(); err != nil {
			return ioError(err), true
		}
		c.data = c.data[:0] // finish writes only the terminator
		if cap(c.data) > maxKeptData {
			c.data = nil
		}
		b := env
		c.begun = &b
		return nil, false
	}
	c.data = appendDotStuffed(c.data[:0], parts)
	c.data = c.data[:len(c.data)-3]
	return c.finish(next), false
}

// content returns parts as DATA content without its terminator, in one
// slice so that it can go out in one write: the one non-empty part
// itself when it needs no dot-stuffing (a Template's message, unsigned),
// else the parts copied into c.data and dot-stuffed there (a 24 KB copy
// costs less than a second write). Nothing is written unstuffed unless
// stuffingFree checked it.
func (c *Conn) content(parts [][]byte) []byte {
	var one []byte
	n := 0
	for _, p := range parts {
		if len(p) > 0 {
			one = p
			n++
		}
	}
	if n == 1 && stuffingFree(parts) {
		return one
	}
	c.data = appendDotStuffed(c.data[:0], parts)
	return c.data[:len(c.data)-3]
}

// stuffingFree reports whether parts, concatenated, are DATA content as
// they are: no line starts with '.', and the content ends with a line end
// (appendDotStuffed would change nothing but add the terminator).
func stuffingFree(parts [][]byte) bool {
	lineStart := true
	last := byte('\n')
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		if lineStart && p[0] == '.' || indexDotLine(p) >= 0 {
			return false
		}
		last = p[len(p)-1]
		lineStart = last == '\n'
	}
	return last == '\n'
}

// indexDotLine returns the index of the first "\n." in p, or -1. It
// looks for dots and checks the byte before each: in mail, dots are
// rarer than line ends (a 24 KB digest has about 110 against 520), and
// bytes.Index of "\n." calls IndexByte once per line end, some four
// times slower on such a message. Where dots turn out dense, bytes.Index
// takes over for the rest.
func indexDotLine(p []byte) int {
	i, fails := 0, 0
	for {
		j := bytes.IndexByte(p[i:], '.')
		if j < 0 {
			return -1
		}
		i += j
		if i > 0 && p[i-1] == '\n' {
			return i - 1
		}
		i++
		if fails++; fails > 16+i>>5 {
			// p[i-1] is a '.' not after a line end: a match starts at
			// i or later.
			if k := bytes.Index(p[i:], []byte("\n.")); k >= 0 {
				return i + k
			}
			return -1
		}
	}
}

// finish writes the content in c.data (none after BeginRaw), the
// terminator and next's commands, and reads the message's reply.
func (c *Conn) finish(next *Envelope) *SendError {
	t := c.session.Text
	if err := c.session.UpdateDeadline(c.timeout()); err != nil {
		return ioError(err)
	}
	c.data = append(c.data, '.', '\r', '\n')
	if next != nil && *c.pipelining {
		c.data = appendCommands(c.data, next)
		pre := *next
		pre.To = slices.Clone(next.To)
		c.pre = &pre
	}
	_, err := t.W.Write(c.data)
	c.data = c.data[:0]
	if cap(c.data) > maxKeptData {
		c.data = nil
	}
	if err != nil {
		return ioError(err)
	}
	if err := t.W.Flush(); err != nil {
		return ioError(err)
	}
	code, msg, err := readReply(t, 250)
	if err != nil {
		if code == 0 {
			return ioError(err)
		}
		return replyError(code, msg, err)
	}
	return nil
}

// reset ends a failed transaction with RSET.
func (c *Conn) reset(t *textproto.Conn) error {
	t.W.WriteString("RSET\r\n")
	if err := t.W.Flush(); err != nil {
		return err
	}
	_, _, err := readReply(t, 250)
	return err
}

func (c *Conn) timeout() time.Duration {
	if c.cfg.Timeout == 0 {
		return DefaultTimeout
	}
	return c.cfg.Timeout
}

// maxKeptData bounds the DATA buffer a Conn keeps between messages.
const maxKeptData = 1 << 20

// appendDotStuffed appends parts as DATA content: a '.' doubled at the
// start of each line, CRLF added when the content does not end with one,
// then the terminating ".\r\n". The content must already use CRLF line
// ends (Encode checks that). It scans for line starts with indexDotLine
// rather than byte by byte.
func appendDotStuffed(dst []byte, parts [][]byte) []byte {
	lineStart := true
	var last byte = '\n'
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		for len(p) > 0 {
			if lineStart && p[0] == '.' {
				dst = append(dst, '.')
			}
			i := indexDotLine(p)
			if i < 0 {
				dst = append(dst, p...)
				last = p[len(p)-1]
				lineStart = last == '\n'
				break
			}
			dst = append(dst, p[:i+1]...)
			p = p[i+1:]
			lineStart = true
		}
	}
	if last != '\n' {
		dst = append(dst, '\r', '\n')
	}
	return append(dst, '.', '\r', '\n')
}

func ioError(err error) *SendError {
	return &SendError{Temporary: true, Reply: err.Error(), Err: err}
}

// replyError turns an SMTP reply into a SendError: 4xx temporary, 5xx
// permanent, with the enhanced status code when the reply starts with one.
func replyError(code int, msg string, err error) *SendError {
	se := &SendError{Code: code, Reply: fmt.Sprintf("%d %s", code, strings.Join(strings.Fields(msg), " ")), Err: err}
	se.Temporary = code < 500
	if f := strings.Fields(msg); len(f) > 0 && isEnhanced(f[0]) {
		se.Enhanced = f[0]
	}
	return se
}

func isEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.ContainsRune("245", rune(parts[0][0])) {
		return false
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}
