package mailer

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/emersion/go-smtp"
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
