package mailer

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"

	gomail "github.com/wneessen/go-mail"
)

// encodeParts writes m to buf (reset first), byte for byte as m.WriteTo
// does, with less work: each quoted-printable part's body writer is
// swapped for a placeholder (a marker of letters and digits, which
// quoted-printable leaves as it is), go-mail writes the message around the
// placeholders, and each placeholder is replaced by the part's body
// encoded with appendQP (identical to go-mail's mime/quotedprintable
// encoding, without its intermediate buffers). The writers are restored
// before it returns. When a placeholder is not found exactly once (a part
// go-mail skips), the message is written by go-mail alone.
func encodeParts(m *gomail.Msg, buf *bytes.Buffer) error {
	parts := m.GetParts()
	type body struct {
		part   *gomail.Part
		write  func(io.Writer) (int64, error)
		marker string
		start  int // of the raw body in raw
		end    int
		at     int // of the marker in the skeleton
	}
	sc := scratches.Get().(*scratch)
	defer scratches.Put(sc)
	sc.raw.Reset()
	bodies := make([]body, 0, 2)
	for i, p := range parts {
		w := p.GetWriteFunc()
		if w == nil || p.GetEncoding() != gomail.EncodingQP || i >= len(bodyMarkers) {
			continue
		}
		start := sc.raw.Len()
		if _, err := w(&sc.raw); err != nil {
			return fmt.Errorf("bodyWriter function: %w", err)
		}
		bodies = append(bodies, body{part: p, write: w, marker: bodyMarkers[i], start: start, end: sc.raw.Len()})
	}
	for _, b := range bodies {
		b.part.SetWriteFunc(writeString(b.marker))
	}
	sc.skel.Reset()
	_, err := m.WriteTo(&sc.skel)
	for _, b := range bodies {
		b.part.SetWriteFunc(b.write)
	}
	if err != nil {
		return err
	}
	skel := sc.skel.Bytes()
	size := len(skel)
	for i := range bodies {
		b := &bodies[i]
		b.at = bytes.Index(skel, []byte(b.marker))
		if b.at < 0 || bytes.LastIndex(skel, []byte(b.marker)) != b.at || i > 0 && b.at < bodies[i-1].at {
			buf.Reset()
			_, err := m.WriteTo(buf)
			return err
		}
		size += qpSize(b.end - b.start)
	}
	buf.Reset()
	buf.Grow(size)
	out := buf.AvailableBuffer()
	raw := sc.raw.Bytes()
	last := 0
	for _, b := range bodies {
		out = append(out, skel[last:b.at]...)
		out = appendQP(out, raw[b.start:b.end])
		last = b.at + len(b.marker)
	}
	out = append(out, skel[last:]...)
	buf.Write(out)
	return nil
}

// qpSize is a generous guess of the encoded size of n bytes of mostly
// ASCII text, so that buf rarely grows while it is filled.
func qpSize(n int) int { return n + n/4 + 64 }

type scratch struct{ raw, skel bytes.Buffer }

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// bodyMarkers are the placeholders of parts 0, 1…: letters and digits,
// shorter than a quoted-printable line, random per process so that no
// header or other part can hold one.
var bodyMarkers = func() []string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("mailer: crypto/rand failed: " + err.Error())
	}
	n := "NDBODY" + strings.ToUpper(hex.EncodeToString(b[:]))
	ms := make([]string, 8)
	for i := range ms {
		ms[i] = n + "P" + string(rune('0'+i))
	}
	return ms
}()

func writeString(s string) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		n, err := io.WriteString(w, s)
		return int64(n), err
	}
}
