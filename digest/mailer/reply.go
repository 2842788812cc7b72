package mailer

import (
	"bytes"
	"net/textproto"
)

// readReply reads one SMTP reply as t.ReadResponse(expect) does, but
// without building its text when it is a single well-formed line with the
// expected code: a pipelined send reads four replies a message, nearly all
// 250 or 354, and ReadResponse allocates strings for each. msg is empty
// on that path; every other reply (several lines, another code, anything
// malformed or cut short) is read by ReadResponse itself.
func readReply(t *textproto.Conn, expect int) (code int, msg string, err error) {
	r := t.R
	if _, err := r.Peek(1); err == nil { // wait for the reply's first bytes
		buf, _ := r.Peek(r.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 4 && buf[3] == ' ' {
			c := 0
			for _, d := range buf[:3] {
				if d < '0' || d > '9' {
					c = -1
					break
				}
				c = c*10 + int(d-'0')
			}
			if c >= 100 && codeMatches(c, expect) {
				r.Discard(i + 1)
				return c, "", nil
			}
		}
	}
	return t.ReadResponse(expect)
}

// codeMatches is ReadResponse's test of a reply code against an expected
// one of 1, 2 or 3 digits (any code when expect ≤ 0).
func codeMatches(code, expect int) bool {
	return !(1 <= expect && expect < 10 && code/100 != expect ||
		10 <= expect && expect < 100 && code/10 != expect ||
		100 <= expect && expect < 1000 && code != expect)
}
