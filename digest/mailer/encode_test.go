package mailer

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"
)

// stdQP is what go-mail does with a body: one Write, then Close.
func stdQP(t testing.TB, src []byte) []byte {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	if _, err := w.Write(src); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkQP checks appendQP against the standard library's writer, and
// appendQPNoDot against appendQP: no line of it starts with '.', no
// line is longer than 76 octets, it decodes to the same bytes, and it is
// byte for byte appendQP's output when that has no line starting with
// '.'.
func checkQP(t testing.TB, src []byte) {
	t.Helper()
	want := stdQP(t, src)
	got := appendQP([]byte("prefix"), src)
	if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
		t.Fatalf("appendQP(%q):\n got %q\nwant %q", src, got[6:], want)
	}
	nd := appendQPNoDot([]byte("prefix\r\n"), src)
	if !bytes.HasPrefix(nd, []byte("prefix\r\n")) {
		t.Fatalf("appendQPNoDot(%q) did not append", src)
	}
	nd = nd[len("prefix\r\n"):]
	if got := appendQPNoDot[string](nil, string(src)); !bytes.Equal(got, nd) {
		t.Fatalf("appendQPNoDot(%q): string and []byte differ", src)
	}
	dotted := bytes.HasPrefix(want, []byte(".")) || bytes.Contains(want, []byte("\n."))
	if bytes.Equal(nd, want) == dotted {
		t.Fatalf("appendQPNoDot(%q) = %q; appendQP gives %q (a line starting with '.': %v)", src, nd, want, dotted)
	}
	if bytes.HasPrefix(nd, []byte(".")) || bytes.Contains(nd, []byte("\n.")) {
		t.Fatalf("appendQPNoDot(%q): a line starts with '.': %q", src, nd)
	}
	for l := range bytes.SplitSeq(nd, []byte("\r\n")) {
		if len(l) > 76 {
			t.Fatalf("appendQPNoDot(%q): a line of %d octets", src, len(l))
		}
	}
	a, err1 := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(nd)))
	b, err2 := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(want)))
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		t.Fatalf("appendQPNoDot(%q) decodes to %q (%v), appendQP to %q (%v)", src, a, err1, b, err2)
	}
}

var qpSeeds = []string{
	"", " ", "\t", "=", "\r", "\n", "\r\n", "\n\r", "\r\r\n", "\r=\n", "a \r\nb\t\n", "end \t",
	"Zoë — “quoted” naïve café\r\n",
	string(bytes.Repeat([]byte("a"), 75)) + " ",
	string(bytes.Repeat([]byte("a"), 74)) + " \r\n",
	string(bytes.Repeat([]byte("a"), 73)) + "=",
	string(bytes.Repeat([]byte("a"), 72)) + "é\t",
	string(bytes.Repeat([]byte("x"), 300)),
	string(bytes.Repeat([]byte("a b\tc="), 60)),
	".", "..", ".\n.", "\n.x", "a\r\n.\r\n", ". \n", ".\t",
	string(bytes.Repeat([]byte("a"), 75)) + ".b",
	string(bytes.Repeat([]byte("a"), 75)) + "..",
	string(bytes.Repeat([]byte("."), 200)),
	string(bytes.Repeat([]byte("é"), 25)) + ".",
	".wrapper-cell { padding: 0; }\n.footer a { color: #555; }\n",
}

func FuzzAppendQP(f *testing.F) {
	for _, s := range qpSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) { checkQP(t, src) })
}

// TestAppendQPRandom compares appendQP with the standard library's writer
// on many random inputs drawn from the bytes that matter to the encoding
// (spaces, tabs, CR, LF, '=', non-ASCII) at every line position.
func TestAppendQPRandom(t *testing.T) {
	for _, s := range qpSeeds {
		checkQP(t, []byte(s))
	}
	rng := rand.New(rand.NewPCG(4, 2026))
	alphabet := []byte("ab=. \t\r\n\xc3\xa9\x00\x7f~!")
	for range 20000 {
		src := make([]byte, rng.IntN(400))
		for i := range src {
			if rng.IntN(3) == 0 {
				src[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				src[i] = byte(rng.IntN(256))
			}
		}
		checkQP(t, src)
	}
}

// encodeBoth encodes m with Encode and with go-mail's own WriteTo.
func encodeBoth(t testing.TB, m Message) (fast, slow []byte, err error) {
	msg, err := Build(m)
	if err != nil {
		return nil, nil, err
	}
	var fb, sb bytes.Buffer
	if _, err := Encode(msg, &fb); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if _, err := msg.WriteTo(&sb); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	// The message is unchanged: a second Encode gives the same bytes.
	var again bytes.Buffer
	if _, err := Encode(msg, &again); err != nil || !bytes.Equal(again.Bytes(), fb.Bytes()) {
		t.Fatalf("a second Encode differs (%v)", err)
	}
	return fb.Bytes(), sb.Bytes(), nil
}

func TestEncodeMatchesWriteTo(t *testing.T) {
	base := fixedMessage(t)
	golden, err := os.ReadFile(filepath.Join("testdata", "digest.golden.eml"))
	if err != nil {
		t.Fatal(err)
	}
	noHTML := base
	noHTML.HTML = nil
	spaces := base
	spaces.Text = []byte("line with trailing space \r\nand tab\t\n" + string(bytes.Repeat([]byte("é"), 80)) + "\r")
	spaces.HTML = []byte("<p>=3D \r\n</p> ")
	random := base
	random.Boundary, random.MessageID = "", ""
	for name, m := range map[string]Message{"digest": base, "no html": noHTML, "spaces": spaces, "random boundary": random} {
		fast, slow, err := encodeBoth(t, m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("%s: Encode differs from WriteTo:\n%q\n%q", name, fast, slow)
		}
		if name == "digest" && !bytes.Equal(fast, golden) {
			t.Fatalf("Encode differs from testdata/digest.golden.eml")
		}
	}
}

// TestEncodeMarkerInBody: a body holding text like a placeholder changes
// nothing (the placeholders are random per process, and a body is only
// encoded, never searched).
func TestEncodeMarkerInBody(t *testing.T) {
	m := fixedMessage(t)
	m.Text = []byte(bodyMarkers[1] + " " + bodyMarkers[0])
	m.HTML = []byte(bodyMarkers[0])
	fast, slow, err := encodeBoth(t, m)
	if err != nil || !bytes.Equal(fast, slow) {
		t.Fatalf("differs (%v):\n%q\n%q", err, fast, slow)
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("Subject", "Zoë", []byte("text \r\n"), []byte("<p>html</p>"))
	f.Add("=?utf-8?q?x?=", "", []byte("a=b\t"), []byte(""))
	m0 := fixedMessage(f)
	f.Fuzz(func(t *testing.T, subject, name string, text, html []byte) {
		m := m0
		m.Subject, m.ToName, m.Text, m.HTML = subject, name, text, html
		fast, slow, err := encodeBoth(t, m)
		if err == nil && !bytes.Equal(fast, slow) {
			t.Fatalf("outputs differ:\n%q\n%q", fast, slow)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	m := fixedMessage(b)
	var buf bytes.Buffer
	b.Run("Build+WriteTo", func(b *testing.B) { // go-mail alone, as before
		b.ReportAllocs()
		for b.Loop() {
			msg, err := Build(m)
			if err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			if _, err := msg.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Build+Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			msg, err := Build(m)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Encode(msg, &buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// stdDot is the standard library's dot-stuffing of CRLF content.
func stdDot(t testing.TB, parts [][]byte) []byte {
	var b bytes.Buffer
	w := textproto.NewWriter(bufio.NewWriter(&b)).DotWriter()
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAppendDotStuffed(t *testing.T) {
	cases := [][][]byte{
		{[]byte("a\r\n")},
		{[]byte(".a\r\n.\r\n..b\r\nc")},
		{[]byte("DKIM-Signature: x\r\n"), []byte(".starts with a dot\r\nx\r\n.")},
		{[]byte("a\r\n"), []byte(".b\r\n")},
		{[]byte("a\r"), []byte("\n.b\r\n")},
		{nil, []byte("x")},
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		var parts [][]byte
		for range rng.IntN(4) {
			var p []byte
			for range rng.IntN(12) {
				p = append(p, []string{"a", ".", "\r\n", "..", "x."}[rng.IntN(5)]...)
			}
			parts = append(parts, p)
		}
		cases = append(cases, parts)
	}
	for _, parts := range cases {
		// The standard writer sees one CRLF stream, as Encode makes.
		joined := bytes.Join(parts, nil)
		if len(joined) == 0 { // never: a message is not empty
			continue
		}
		if bytes.Count(joined, []byte("\r")) != bytes.Count(joined, []byte("\r\n")) || bytes.Count(joined, []byte("\n")) != bytes.Count(joined, []byte("\r\n")) {
			continue
		}
		got := appendDotStuffed([]byte("x"), parts)
		if want := stdDot(t, parts); !bytes.Equal(got[1:], want) {
			t.Fatalf("appendDotStuffed(%q):\n got %q\nwant %q", parts, got[1:], want)
		}
	}
}

func BenchmarkAppendQP(b *testing.B) {
	m := fixedMessage(b)
	dst := make([]byte, 0, 2*(len(m.Text)+len(m.HTML)))
	b.SetBytes(int64(len(m.Text) + len(m.HTML)))
	for b.Loop() {
		dst = appendQP(appendQP(dst[:0], m.Text), m.HTML)
	}
}
