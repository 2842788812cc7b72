package mailer

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/textproto"
	"strings"
	"testing"
)

// readBoth reads one reply from input with readReply and with
// ReadResponse, each on its own reader, and says how they differ: the
// code, the error (and the text with it) and what is left to read after
// must be the same; the text of a reply read without error may be empty
// from readReply.
func readBoth(input string, expect int) string {
	lean := textproto.NewConn(struct {
		io.Reader
		io.WriteCloser
	}{strings.NewReader(input), nopCloser{io.Discard}})
	std := textproto.NewReader(bufio.NewReader(strings.NewReader(input)))
	c1, m1, e1 := readReply(lean, expect)
	c2, m2, e2 := std.ReadResponse(expect)
	rest1, _ := io.ReadAll(lean.R)
	rest2, _ := io.ReadAll(std.R)
	switch {
	case c1 != c2:
		return fmt.Sprintf("code %d, ReadResponse %d", c1, c2)
	case fmt.Sprint(e1) != fmt.Sprint(e2):
		return fmt.Sprintf("error %v, ReadResponse %v", e1, e2)
	case e1 != nil && m1 != m2, e1 == nil && m1 != "" && m1 != m2:
		return fmt.Sprintf("text %q, ReadResponse %q", m1, m2)
	case string(rest1) != string(rest2):
		return fmt.Sprintf("left %q, ReadResponse left %q", rest1, rest2)
	}
	return ""
}

// TestReadReplyAsReadResponse compares readReply with ReadResponse on
// typical replies, pipelined sequences, multi-line and malformed ones.
func TestReadReplyAsReadResponse(t *testing.T) {
	cases := []struct {
		in     string
		expect int
	}{
		{"250 2.0.0 Ok: queued as 4A1B2\r\n", 250},
		{"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n", 250},
		{"354 go ahead\r\n", 354},
		{"251 forwarded\r\n", 25},
		{"250 ok\n", 250},
		{"451 4.3.0 try later\r\n", 250},
		{"550 5.1.1 <x@example.org>: Recipient address rejected\r\n", 25},
		{"250-first\r\n250-second\r\n250 last\r\n", 250},
		{"250-first\r\nnot a code line\r\n250 last\r\n", 250},
		{"550-a\r\n550 b\r\n", 250},
		{"250\r\n", 250},
		{"25x ok\r\n", 250},
		{"099 ok\r\n", 250},
		{"250 ok", 250},
		{"", 250},
		{"250 partial line without end", 250},
		{"250 " + strings.Repeat("x", 5000) + "\r\n", 250},
		{"354 ok\r\n", 3},
		{"221 bye\r\n", 0},
	}
	for _, c := range cases {
		if d := readBoth(c.in, c.expect); d != "" {
			t.Errorf("%q (expect %d): %s", c.in, c.expect, d)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	parts := []string{"250", "354", "251", "451", "550", "25", "2", " ", "-", "ok", "\r\n", "\n", "\r", "x"}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		expect := []int{250, 354, 25, 2, 0}[rng.IntN(5)]
		if d := readBoth(b.String(), expect); d != "" {
			t.Fatalf("%q (expect %d): %s", b.String(), expect, d)
		}
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func FuzzReadReply(f *testing.F) {
	f.Add("250 2.0.0 Ok\r\n354 go\r\n", 250)
	f.Add("250-a\r\nb\r\n250 c\r\n", 25)
	f.Fuzz(func(t *testing.T, in string, expect int) {
		if d := readBoth(in, expect); d != "" {
			t.Fatalf("%q (expect %d): %s", in, expect, d)
		}
	})
}
