package mailer

import (
	"net/mail"
	"strings"
	"testing"
	"time"
)

// sameErr reports whether two errors are both nil or say the same.
func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == b.Error()
}

// checkURLsAgainstPlain runs urls in order through one urlChecks and
// compares each answer with the uncached check's.
func checkURLsAgainstPlain(t *testing.T, urls []string) {
	t.Helper()
	var c urlChecks
	for _, k := range []urlKind{urlUnsubscribe, urlMailto} {
		plain := checkUnsubscribeURL
		if k == urlMailto {
			plain = checkMailtoURI
		}
		for _, s := range urls {
			if got, want := c.check(k, s), plain(s); !sameErr(got, want) {
				t.Fatalf("kind %d, %q after %q: got %v, want %v", k, s, urls, got, want)
			}
		}
	}
}

func TestURLChecks(t *testing.T) {
	tok := "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA.abc_def-ghi"
	for _, urls := range [][]string{
		{"https://news.example/unsubscribe/" + tok, "https://news.example/unsubscribe/other", "https://news.example/unsubscribe/", "https://news.example/unsubscribe/a%zz"},
		{"https://news.example/" + tok, "https://news.example/x", "https://news.example/"},
		// The authority must end before the token: a token there would
		// change the host.
		{"https://news.example", "https://news.examplex", "https://", "https://x"},
		{"http://localhost/u/" + tok, "http://localhost/u/x", "http://localhost", "http://localhostx", "http://localhost/"},
		{"http://127.0.0.1/u/" + tok, "http://127.0.0.1/u/y", "http://127.0.0.1", "http://127.0.0.15", "http://127.0.0.1x"},
		{"http://news.example/u/" + tok, "http://news.example/u/y"},
		{"https://news.example/u?x=" + tok, "https://news.example/u?x=", "https://news.example/u?x=%"},
		{"https://news.example/u#" + tok, "https://news.example/u#"},
		{"https://news.example/a%41/" + tok, "https://news.example/a%41/b", "https://news.example/a%4/" + tok, "https://news.example/a%/b"},
		{"https://user@news.example:8443/u/" + tok, "https://user@news.example:8443/u/b", "https://[::1]/u/x", "https://[::1/u/x"},
		{"mailto:unsubscribe@news.example?subject=unsubscribe%20" + tok, "mailto:unsubscribe@news.example?subject=unsubscribe%20x",
			"mailto:unsubscribe@news.example?subject=unsubscribe%20", "mailto:unsubscribe@news.example?subject=unsubscribe%"},
		{"mailto:u@news.example", "mailto:u@news.exampleX", "mailto:", "mailto:x", "mailto:/x", "mailto:?x", "mailto:?"},
		{"MAILTO:u@n.example?" + tok, "MAILTO:u@n.example?", "MAILTO:u@n.example?a", "mailto:u@n.example?a?b"},
		{"mailto:a b@n.example?" + tok, "mailto:a,b@n.example?x", "mailto:<a>?x"},
		{"mailto:u@n.example#x" + tok, "mailto:u@n.example#x"},
		{"", "x", "/x", "//x/y", "https:x/y", "https:/x/y", "ftp://x/y", "https://x/y\x01z", "https://x/\x7f"},
	} {
		checkURLsAgainstPlain(t, urls)
	}
	// The shortcut is taken: the prefix is remembered once checked.
	var c urlChecks
	if err := c.check(urlUnsubscribe, "https://news.example/unsubscribe/"+tok); err != nil {
		t.Fatal(err)
	}
	if p := c.prefix[urlUnsubscribe].Load(); p == nil || *p != "https://news.example/unsubscribe/" {
		t.Errorf("prefix %v, want https://news.example/unsubscribe/", p)
	}
	if err := c.check(urlMailto, "mailto:u@n.example?subject=unsubscribe%20"+tok); err != nil {
		t.Fatal(err)
	}
	if p := c.prefix[urlMailto].Load(); p == nil || *p != "mailto:u@n.example?subject=unsubscribe%" {
		t.Errorf("prefix %v, want mailto:u@n.example?subject=unsubscribe%%", p)
	}
}

// FuzzURLChecks checks that remembering good prefixes never changes an
// answer, whatever URLs come in whatever order.
func FuzzURLChecks(f *testing.F) {
	f.Add("https://news.example/unsubscribe/", "abc.DEF-1_2", "x")
	f.Add("http://localhost", "x", "")
	f.Add("https://news.example", "x", "/y")
	f.Add("mailto:u@n.example?subject=unsubscribe%", "20abc", "")
	f.Add("mailto:", "x", "?")
	f.Add("https://news.example/a%4", "1", "")
	f.Fuzz(func(t *testing.T, p, a, b string) {
		checkURLsAgainstPlain(t, []string{p + a, p + b, p, p + a + b, a, p + a})
	})
}

func TestFormatAddress(t *testing.T) {
	for _, a := range []mail.Address{
		{Address: "reader@example.org"},
		{Name: "Reader 1", Address: "reader@example.org"},
		{Name: `Tom "T" O'Hara \ Co.`, Address: "t.o@example.org"},
		{Name: "Ann\tB", Address: "ann@example.org"},
		{Name: "Ödön", Address: "o@example.org"},
		{Name: "A, B", Address: "o@example.org"},
		{Name: "A\x7fB", Address: "o@example.org"},
		{Name: "Ann", Address: "a..b@example.org"},
		{Name: "Ann", Address: ".a@example.org"},
		{Name: "Ann", Address: "a b@example.org"},
		{Name: "Ann", Address: "ünï@example.org"},
		{Name: "Ann", Address: "no-at"},
	} {
		if got, want := formatAddress(&a), a.String(); got != want {
			t.Errorf("formatAddress(%q, %q) = %q, want %q", a.Name, a.Address, got, want)
		}
	}
}

// FuzzHeaderValues compares Append's shortcuts for header values with the
// general code: the To field's formatting with net/mail's, checkValue
// with its rune-by-rune form.
func FuzzHeaderValues(f *testing.F) {
	f.Add("Reader 1", "reader@example.org")
	f.Add(`Tom "T" \`, "a.b@example.org")
	f.Add("Ödön\r\n", "ünï@example.org")
	f.Add("\x85", "a@b")
	f.Fuzz(func(t *testing.T, name, addr string) {
		a := mail.Address{Name: name, Address: addr}
		if got, want := formatAddress(&a), a.String(); got != want {
			t.Fatalf("formatAddress(%q, %q) = %q, want %q", name, addr, got, want)
		}
		for _, v := range []string{name, addr} {
			if got, want := checkValue("to", v), checkValueRunes("to", v); !sameErr(got, want) {
				t.Fatalf("checkValue(%q) = %v, want %v", v, got, want)
			}
		}
	})
}

func TestDateField(t *testing.T) {
	var f dateField
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	t0 := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	for _, d := range []time.Time{
		t0, t0.Add(300 * time.Millisecond), t0.Add(time.Second), t0.Add(time.Second).In(paris), t0.Add(time.Second),
		t0.In(time.FixedZone("", -3600)), t0.In(time.FixedZone("", 7200)), t0.Add(-time.Nanosecond), t0.Local(), t0,
		time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC).In(paris), time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC).In(paris),
	} {
		if got, want := string(f.appendDate([]byte("x"), d)), "x"+d.Format(time.RFC1123Z); got != want {
			t.Errorf("appendDate(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestAppendShortcutsInMessages checks whole messages of one template,
// many recipients in a row (so the remembered prefixes and date are
// used), against Build's checks: a good link goes through, a bad one
// fails with Build's error.
func TestAppendShortcutsInMessages(t *testing.T) {
	tmpl, err := NewTemplate(Message{From: "News <news@news.example>", Subject: "Today"}, [][]byte{[]byte("Hello\n")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := "https://news.example/unsubscribe/"
	date := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	failed := 0
	for i, u := range []string{base + "tok1", base + "tok2", base + "a.b-c_d", base + "x y", base + "tok3",
		"https://news.example/unsubscribe", "https://other.example/u/tok", "http://news.example/unsubscribe/tok", base + "tok4%"} {
		r := Recipient{To: "reader@example.org", ToName: "Reader", Date: date, MessageID: "id@news.example",
			UnsubscribeURL: u, UnsubscribeMailto: "u@news.example?subject=unsubscribe%20" + u[strings.LastIndexByte(u, '/')+1:]}
		_, _, err := tmpl.Append(nil, &r, plainBody{})
		_, werr := Build(Message{From: "News <news@news.example>", Subject: "Today", To: r.To, ToName: r.ToName, Date: date,
			MessageID: r.MessageID, UnsubscribeURL: r.UnsubscribeURL, UnsubscribeMailto: r.UnsubscribeMailto, Text: []byte("Hello\n")})
		if !sameErr(err, werr) {
			t.Errorf("%d %q: Append: %v, Build: %v", i, u, err, werr)
		}
		if err != nil {
			failed++
		}
	}
	if failed == 0 || failed == 9 {
		t.Errorf("%d of 9 messages failed: want some of each", failed)
	}
}

// plainBody lays out a part's segments with no values.
type plainBody struct{}

func (plainBody) AppendPart(dst []byte, _ bool, lits [][]byte, _ func([]byte, string) []byte) []byte {
	for _, l := range lits {
		dst = append(dst, l...)
	}
	return dst
}

// BenchmarkURLChecks compares checking a recipient's List-Unsubscribe
// URL and mailto with the plain checks and with urlChecks that have
// seen the send's links.
func BenchmarkURLChecks(b *testing.B) {
	tok := "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA.abc_def-ghi"
	u := "https://harbourgazette.example/unsubscribe/" + tok
	mt := "mailto:digest@harbourgazette.example?subject=unsubscribe%20" + tok
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if checkUnsubscribeURL(u) != nil || checkMailtoURI(mt) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("urlChecks", func(b *testing.B) {
		var c urlChecks
		b.ReportAllocs()
		for b.Loop() {
			if c.check(urlUnsubscribe, u) != nil || c.check(urlMailto, mt) != nil {
				b.Fatal("refused")
			}
		}
	})
}
