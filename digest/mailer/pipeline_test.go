package mailer

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	gomail "github.com/wneessen/go-mail"
)

// rawFor encodes a message to one recipient for the raw path.
func rawFor(t *testing.T, to string) (Envelope, []byte) {
	t.Helper()
	var buf bytes.Buffer
	env, err := Encode(buildFor(t, to), &buf)
	if err != nil {
		t.Fatal(err)
	}
	return env, buf.Bytes()
}

// SendRawThen chains transactions: each message's content goes out with
// the next one's MAIL/RCPT/DATA, over one session, and every message
// arrives once, intact, in order; a refused recipient announced that way
// is reported by its own call and the session goes on.
func TestSendRawThenPipelinesAcrossMessages(t *testing.T) {
	srv := startCapture(t)
	srv.SetReply(func(from, to string) error {
		if to == "gone@example.org" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		}
		return nil
	})
	c := dial(t, srv)
	rcpts := []string{"a@example.org", "b@example.org", "gone@example.org", "c@example.org", "d@example.org"}
	envs := make([]Envelope, len(rcpts))
	bodies := make([][]byte, len(rcpts))
	for i, r := range rcpts {
		envs[i], bodies[i] = rawFor(t, r)
	}
	for i := range rcpts {
		var next *Envelope
		if i+1 < len(rcpts) {
			next = &envs[i+1]
		}
		err := c.SendRawThen(context.Background(), envs[i], next, bodies[i])
		if rcpts[i] == "gone@example.org" {
			var se *SendError
			if !errors.As(err, &se) || se.Code != 550 || se.Enhanced != "5.1.1" || se.Temporary {
				t.Errorf("to %s: err = %v, want a permanent 550 5.1.1", rcpts[i], err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("to %s: %v", rcpts[i], err)
		}
	}
	got := srv.Messages()
	want := []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org"}
	if len(got) != len(want) {
		t.Fatalf("server got %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		if len(m.To) != 1 || m.To[0] != want[i] {
			t.Errorf("message %d to %v, want %s", i, m.To, want[i])
		}
		if !bytes.Contains(m.Data, []byte("To: <"+want[i]+">")) {
			t.Errorf("message %d to %s does not carry its own To header", i, want[i])
		}
	}
}

// An announced transaction that is not sent (another envelope comes
// instead, or the connection closes) delivers nothing: the server never
// gets an empty or foreign message under the announced envelope.
func TestSendRawThenAnnouncedButNotSent(t *testing.T) {
	srv := startCapture(t)
	c := dial(t, srv)
	envA, bodyA := rawFor(t, "a@example.org")
	envB, _ := rawFor(t, "b@example.org")
	envC, bodyC := rawFor(t, "c@example.org")
	if err := c.SendRawThen(context.Background(), envA, &envB, bodyA); err != nil {
		t.Fatal(err)
	}
	// B was announced; C comes instead. The session holding B's open
	// DATA is ended and C goes out on a new one.
	if err := c.SendRawThen(context.Background(), envC, &envB, bodyC); err != nil {
		t.Fatalf("sending another envelope than announced: %v", err)
	}
	// B announced again, then the connection closes.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 2 || got[0].To[0] != "a@example.org" || got[1].To[0] != "c@example.org" {
		var tos []string
		for _, m := range got {
			tos = append(tos, m.To...)
		}
		t.Fatalf("server got messages to %v, want a and c only", tos)
	}
}

// BeginRaw sends everything but the terminator: nothing is delivered
// until FinishRaw; an aborted or closed transaction is never delivered,
// and the connection goes on working.
func TestBeginRawFinishRawAbortRaw(t *testing.T) {
	srv := startCapture(t)
	c := dial(t, srv)
	ctx := context.Background()
	envA, bodyA := rawFor(t, "a@example.org")
	envB, bodyB := rawFor(t, "b@example.org")
	envC, bodyC := rawFor(t, "c@example.org")
	envD, bodyD := rawFor(t, "d@example.org")
	envE, bodyE := rawFor(t, "e@example.org")

	if err := c.BeginRaw(ctx, envA, bodyA); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(); n != 0 {
		t.Fatalf("%d messages delivered before FinishRaw", n)
	}
	if err := c.FinishRaw(ctx, &envB); err != nil {
		t.Fatal(err)
	}
	// B was announced with A's terminator.
	if err := c.BeginRaw(ctx, envB, bodyB); err != nil {
		t.Fatal(err)
	}
	if err := c.FinishRaw(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.BeginRaw(ctx, envC, bodyC); err != nil {
		t.Fatal(err)
	}
	c.AbortRaw()
	if err := c.FinishRaw(ctx, nil); err == nil {
		t.Error("FinishRaw after AbortRaw succeeded")
	}
	if err := c.SendRaw(ctx, envD, bodyD); err != nil {
		t.Fatalf("SendRaw after an abort: %v", err)
	}
	if err := c.BeginRaw(ctx, envE, bodyE); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var tos []string
	for _, m := range srv.Messages() {
		tos = append(tos, m.To...)
	}
	if want := []string{"a@example.org", "b@example.org", "d@example.org"}; !slices.Equal(tos, want) {
		t.Errorf("delivered to %v, want %v (c aborted, e closed before its terminator)", tos, want)
	}
}

// BeginRaw writes content that needs no dot-stuffing as it is:
// stuffingFree says so exactly when stuffing would change nothing but
// add the terminator, and content with dotted lines still arrives intact.
func TestBeginRawDotStuffing(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	for range 3000 {
		var parts [][]byte
		for range rng.IntN(4) {
			var p []byte
			for range rng.IntN(10) {
				p = append(p, []string{"a", ".", "\r\n", "..", "x.", "\r\n."}[rng.IntN(6)]...)
			}
			parts = append(parts, p)
		}
		same := bytes.Equal(appendDotStuffed(nil, parts), append(bytes.Join(parts, nil), ".\r\n"...))
		if stuffingFree(parts) != same {
			t.Fatalf("parts %q: stuffingFree = %v, want %v", parts, !same, same)
		}
	}

	srv := startCapture(t)
	c := dial(t, srv)
	env := Envelope{From: "digest@gazette.example", To: []string{"a@example.org"}, MessageID: "<x@gazette.example>"}
	for _, body := range []string{
		"Subject: plain\r\n\r\nno dots at line starts.\r\n",
		"Subject: dotted\r\n\r\n.a line with a dot\r\n..two\r\n.\r\nend\r\n",
	} {
		if err := c.BeginRaw(context.Background(), env, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := c.FinishRaw(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		msgs := srv.Messages()
		if got := string(msgs[len(msgs)-1].Data); got != body {
			t.Errorf("received %q, want %q", got, body)
		}
	}
}

// countingConn counts the Write calls on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestBeginRawOneWrite: BeginRaw writes a message's content in one write
// on the connection, whatever its parts (one stuffing-free part, a
// signature field and the message, content with lines starting with '.'
// from anywhere, a message under bufio's 4 KB), and FinishRaw the
// terminator with the next commands in one more; the server receives
// each message as the concatenation of its parts, unstuffed.
func TestBeginRawOneWrite(t *testing.T) {
	srv := startCapture(t)
	var writes atomic.Int64
	var d net.Dialer
	c, err := dialWith(context.Background(),
		Config{Host: srv.Host(), Port: srv.Port(), TLS: "none", Timeout: 10 * time.Second, HELO: "sender.test"},
		gomail.WithDialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{conn, &writes}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	big := tenStories(t)
	rc, r := tmplCases[0].recipient(time.Now(), "")
	v := big.prep.Values(rc)
	msg, env, err := big.withHTML.Append(nil, &r, &v)
	if err != nil {
		t.Fatal(err)
	}
	if !stuffingFree([][]byte{msg}) {
		t.Fatal("the template's message needs stuffing")
	}
	sig := []byte("DKIM-Signature: v=1; a=rsa-sha256; d=harbourgazette.example;\r\n b=abc\r\n")
	dotted := bytes.ReplaceAll(msg, []byte("\r\n\r\n"), []byte("\r\n\r\n.leading dot\r\n..two\r\n.\r\n"))
	at := bytes.Index(dotted, []byte("\r\n.leading")) + 2
	small := []byte("Subject: small\r\n\r\n.a dot\r\nend\r\n")
	cases := []struct {
		name  string
		parts [][]byte
	}{
		{"template", [][]byte{msg}},
		{"signed", [][]byte{sig, msg}},
		{"dotted", [][]byte{dotted}},
		{"dotted, split at a dot", [][]byte{dotted[:at], nil, dotted[at:]}},
		{"small", [][]byte{small}},
		{"no final line end", [][]byte{[]byte("Subject: x\r\n\r\nno end")}},
	}
	ctx := context.Background()
	// The session's first transaction: its commands go out alone.
	if err := c.BeginRaw(ctx, env, cases[0].parts...); err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		var next *Envelope
		if i+1 < len(cases) {
			next = &env
		}
		before := writes.Load()
		if err := c.FinishRaw(ctx, next); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := writes.Load() - before; n != 1 {
			t.Errorf("%s: FinishRaw made %d writes, want 1", tc.name, n)
		}
		got := srv.Messages()
		want := bytes.Join(tc.parts, nil)
		if !bytes.HasSuffix(want, []byte("\r\n")) {
			want = append(want, "\r\n"...)
		}
		if len(got) != i+1 || !bytes.Equal(got[i].Data, want) {
			t.Fatalf("%s: the server got %d messages, the last differing from the parts", tc.name, len(got))
		}
		if next == nil {
			break
		}
		before = writes.Load()
		if err := c.BeginRaw(ctx, env, cases[i+1].parts...); err != nil {
			t.Fatalf("%s: %v", cases[i+1].name, err)
		}
		if n := writes.Load() - before; n != 1 {
			t.Errorf("%s: BeginRaw made %d writes, want 1", cases[i+1].name, n)
		}
	}
}

// TestIndexDotLine compares indexDotLine with bytes.Index on long random
// inputs, dots sparse and dense (where it hands over to bytes.Index).
func TestIndexDotLine(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 2026))
	for range 3000 {
		p := make([]byte, rng.IntN(3000))
		dots := rng.IntN(40) + 1 // one byte in dots is a '.'
		for i := range p {
			switch k := rng.IntN(200); {
			case k < 200/dots:
				p[i] = '.'
			case k < 200/dots+4:
				p[i] = '\n'
			default:
				p[i] = 'a'
			}
		}
		// Mostly no match: a '\n' before a '.' becomes '\r'.
		if rng.IntN(4) > 0 {
			for i := 1; i < len(p); i++ {
				if p[i] == '.' && p[i-1] == '\n' {
					p[i-1] = '\r'
				}
			}
			if len(p) > 1 && rng.IntN(2) == 0 {
				at := 1 + rng.IntN(len(p)-1)
				p[at-1], p[at] = '\n', '.'
			}
		}
		if got, want := indexDotLine(p), bytes.Index(p, []byte("\n.")); got != want {
			t.Fatalf("indexDotLine(%q) = %d, want %d", p, got, want)
		}
	}
}

// BenchmarkRawContent measures what BeginRaw does to a ten-story
// digest's content before writing it: the check that no line starts with
// '.' and, where one does ("gomail": the message as Encode writes it), a
// dot-stuffed copy; "signed" copies a DKIM field and the message into
// one buffer.
func BenchmarkRawContent(b *testing.B) {
	big := tenStories(b)
	rc, r := tmplCases[0].recipient(time.Now(), "0123456789abcdef0123456789abcdef@harbourgazette.example")
	v := big.prep.Values(rc)
	msg, _, err := big.withHTML.Append(nil, &r, &v)
	if err != nil {
		b.Fatal(err)
	}
	m := big.shared
	m.To, m.Date, m.MessageID, m.UnsubscribeURL = r.To, r.Date, r.MessageID, r.UnsubscribeURL
	m.HTML, m.Text = big.prep.Personalize(rc)
	built, err := Build(m)
	if err != nil {
		b.Fatal(err)
	}
	var gm bytes.Buffer
	if _, err := Encode(built, &gm); err != nil {
		b.Fatal(err)
	}
	sig := []byte("DKIM-Signature: v=1; a=rsa-sha256; d=harbourgazette.example;\r\n b=abc\r\n")
	for _, bc := range []struct {
		name  string
		parts [][]byte
	}{
		{"template", [][]byte{msg}},
		{"signed", [][]byte{sig, msg}},
		{"gomail", [][]byte{gm.Bytes()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var c Conn
			b.SetBytes(int64(len(bytes.Join(bc.parts, nil))))
			b.ReportAllocs()
			for b.Loop() {
				c.content(bc.parts)
			}
		})
	}
}
