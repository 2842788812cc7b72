package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	gomail "github.com/wneessen/go-mail"

	"newsdigest/digest/capture"
)

func startCapture(t *testing.T) *capture.Server {
	t.Helper()
	srv, err := capture.Start("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func dial(t *testing.T, srv *capture.Server) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), Config{Host: srv.Host(), Port: srv.Port(), TLS: "none", Timeout: 10 * time.Second, HELO: "sender.test"})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func buildFor(t *testing.T, to string) *gomail.Msg {
	t.Helper()
	m := fixedMessage(t)
	m.To, m.ToName = to, ""
	m.MessageID = NewMessageID("harbourgazette.example")
	m.Boundary = ""
	msg, err := Build(m)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestSendThroughCapture(t *testing.T) {
	srv := startCapture(t)
	c := dial(t, srv)
	rcpts := []string{"a@example.org", "b@example.org", "c@example.org"}
	var msgs []*gomail.Msg
	for _, r := range rcpts {
		msgs = append(msgs, buildFor(t, r))
	}
	// Three messages over the one session, in two calls.
	if err := c.Send(context.Background(), msgs[0]); err != nil {
		t.Fatalf("Send 1: %v", err)
	}
	if err := c.Send(context.Background(), msgs[1:]...); err != nil {
		t.Fatalf("Send 2-3: %v", err)
	}
	got := srv.Messages()
	if len(got) != 3 {
		t.Fatalf("capture got %d messages, want 3", len(got))
	}
	for i, r := range got {
		if len(r.To) != 1 || r.To[0] != rcpts[i] {
			t.Errorf("message %d: RCPT %v, want [%s]", i, r.To, rcpts[i])
		}
		if r.From != "bounces+zoe=example.org@harbourgazette.example" {
			t.Errorf("message %d: MAIL FROM %q, want the return path", i, r.From)
		}
		if !msgs[i].IsDelivered() {
			t.Errorf("message %d: IsDelivered() = false", i)
		}
		if r.Path == "" {
			t.Errorf("message %d not saved to a file", i)
		}
	}

	p := parse(t, got[1].Data)
	checkDigest(t, p, "harbourgazette.example")
	if lu := p.msg.Header.Get("List-Unsubscribe"); !bytes.Contains([]byte(lu), []byte(unsubURL)) {
		t.Errorf("List-Unsubscribe = %q, want %s", lu, unsubURL)
	}
	for i, b := range p.bodies {
		if !bytes.Contains(b, []byte(unsubURL)) {
			t.Errorf("part %s lacks the unsubscribe link", p.types[i])
		}
	}
	if !regexp.MustCompile(`<td class="story" style="padding:12px 24px 20px 24px;[^"]*"`).Match(p.bodies[1]) {
		t.Errorf("the HTML part has no inlined styles")
	}
}

func TestSendServerGone(t *testing.T) {
	srv := startCapture(t)
	c := dial(t, srv)
	if err := c.Send(context.Background(), buildFor(t, "a@example.org")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	srv.Close()
	msg := buildFor(t, "b@example.org")
	err := c.Send(context.Background(), msg)
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("Send after the server closed: err = %v (%T), want a *SendError", err, err)
	}
	if !se.Temporary || se.Delivered || se.Code != 0 {
		t.Errorf("SendError = %+v, want Temporary, not Delivered, Code 0", se)
	}
	if msg.IsDelivered() {
		t.Errorf("IsDelivered() = true for a message the server never saw")
	}
}

func TestSendReconnectsOnce(t *testing.T) {
	srv := startCapture(t)
	c := dial(t, srv)
	// Break the session under the Conn, as an idle timeout would.
	c.mu.Lock()
	c.session.Close()
	c.mu.Unlock()
	if err := c.Send(context.Background(), buildFor(t, "a@example.org")); err != nil {
		t.Fatalf("Send on a dropped session: %v", err)
	}
	if got := srv.Count(); got != 1 {
		t.Errorf("capture got %d messages, want 1", got)
	}
}

func TestSendRefusals(t *testing.T) {
	srv := startCapture(t)
	srv.SetReply(func(from, to string) error {
		switch to {
		case "gone@example.org":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		case "busy@example.org":
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
		}
		return nil
	})
	c := dial(t, srv)
	cases := []struct {
		to        string
		code      int
		enhanced  string
		temporary bool
	}{
		{"gone@example.org", 550, "5.1.1", false},
		{"busy@example.org", 451, "4.3.0", true},
	}
	for _, tc := range cases {
		t.Run(tc.to, func(t *testing.T) {
			msg := buildFor(t, tc.to)
			err := c.Send(context.Background(), msg)
			var se *SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want a *SendError", err, err)
			}
			if se.Code != tc.code || se.Temporary != tc.temporary || se.Enhanced != tc.enhanced || se.Delivered {
				t.Errorf("SendError = %+v, want Code %d, Enhanced %s, Temporary %v", se, tc.code, tc.enhanced, tc.temporary)
			}
			if want := fmt.Sprintf("%d %s", tc.code, tc.enhanced); !bytes.HasPrefix([]byte(se.Reply), []byte(want)) {
				t.Errorf("Reply = %q, want it to start with %q", se.Reply, want)
			}
		})
	}
	// The session survives refusals.
	if err := c.Send(context.Background(), buildFor(t, "ok@example.org")); err != nil {
		t.Fatalf("Send after refusals: %v", err)
	}
	if got := srv.Count(); got != 1 {
		t.Errorf("capture got %d messages, want 1", got)
	}
	// A batch with one refusal: the others go through, the error names it.
	batch := []*gomail.Msg{buildFor(t, "x@example.org"), buildFor(t, "gone@example.org"), buildFor(t, "y@example.org")}
	err := c.Send(context.Background(), batch...)
	var se *SendError
	if !errors.As(err, &se) || se.Index != 1 || se.Code != 550 {
		t.Errorf("batch: err = %v, want a 550 SendError at index 1", err)
	}
	if !batch[0].IsDelivered() || batch[1].IsDelivered() || !batch[2].IsDelivered() {
		t.Errorf("batch delivered = %v %v %v, want true false true", batch[0].IsDelivered(), batch[1].IsDelivered(), batch[2].IsDelivered())
	}
}
