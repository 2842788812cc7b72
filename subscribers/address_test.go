package subscribers

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		tests := []struct{ in, want string }{
			{"a@example.com", "a@example.com"},
			{"  Alice.Smith+news@Example.COM ", "alice.smith+news@example.com"},
			{"a@b.example.org\r\n", "a@b.example.org"}, // surrounding whitespace is trimmed, never kept
			{"a@xn--bcher-kva.example", "a@xn--bcher-kva.example"},
			{"a@bücher.example", "a@bücher.example"},
			{"=x@example.com", "=x@example.com"},
			{strings.Repeat("l", 64) + "@example.com", strings.Repeat("l", 64) + "@example.com"},
		}
		for _, tt := range tests {
			got, err := NormalizeEmail(tt.in)
			if err != nil {
				t.Errorf("NormalizeEmail(%q): %v", tt.in, err)
				continue
			}
			if got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
		}
	})
	t.Run("Rejected", func(t *testing.T) {
		tests := []struct{ name, in string }{
			{"empty", "  "},
			{"no at", "example.com"},
			{"display name", "Alice <a@example.com>"},
			{"angle brackets", "<a@example.com>"},
			{"CRLF inside", "a@example.com\r\nBcc: b@example.com"},
			{"LF inside", "a\n@example.com"},
			{"NUL", "a\x00@example.com"},
			{"DEL", "a\x7f@example.com"},
			// These four passed before the fix: mail.ParseAddress accepts any
			// non-ASCII rune in an atom, and the control check only looked at C0.
			{"NEL (C1 control)", "a\u0085b@example.com"},
			{"line separator", "a\u2028b@example.com"},
			{"no-break space in domain", "a@exa\u00a0mple.com"},
			{"bidi override", "a@example.com\u202e"},
			{"zero-width space", "a\u200b@example.com"},
			{"invalid UTF-8", "\xff@example.com"},
			{"no dot in domain", "a@localhost"},
			{"leading dot", "a@.example.com"},
			{"trailing dot", "a@example.com."},
			{"empty label", "a@example..com"},
			{"label starts with hyphen", "a@-example.com"},
			{"label ends with hyphen", "a@example-.com"},
			{"label too long", "a@" + strings.Repeat("x", 64) + ".com"},
			{"local part too long", strings.Repeat("l", 65) + "@example.com"},
			{"address literal", "a@[192.0.2.1]"},
			{"too long", strings.Repeat("a", 60) + "@" + strings.Repeat(strings.Repeat("b", 60)+".", 4) + "com"},
			{"quoted local part", `"a b"@example.com`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := NormalizeEmail(tt.in)
				if err == nil {
					t.Fatalf("NormalizeEmail(%q) = %q, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrInvalidEmail) {
					t.Errorf("error %v does not wrap ErrInvalidEmail", err)
				}
			})
		}
	})
}

// TestNormalizeEmailShortcut checks that the plain-address shortcut
// answers as the full checks do.
func TestNormalizeEmailShortcut(t *testing.T) {
	for _, s := range []string{
		"a@example.com", "Alice.Smith+news@Example.COM", "reader0000001@example1.org", "a@b.c",
		"!#$%&'*+/=?^_`{|}~-@x-y.example", strings.Repeat("l", 64) + "@example.com", strings.Repeat("l", 65) + "@example.com",
		"a@" + strings.Repeat("d", 63) + ".example", "a@" + strings.Repeat("d", 64) + ".example",
		"a@" + strings.Repeat("d.", 126) + "ex", "a@" + strings.Repeat("d.", 127) + "ex",
		".a@example.com", "a.@example.com", "a..b@example.com", "a@.example.com", "a@example.com.", "a@example..com",
		"a@-example.com", "a@example-.com", "a@example", "@example.com", "a@", "a", "", "a@b@example.com",
		"a b@example.com", " a@example.com", "a@example.com ", "a@[192.0.2.1]", "a@exa_mple.com", "\"a\"@example.com",
		"a@bücher.example", "ä@example.com", "a(b)@example.com", "a@example.com\r\n", "A@EXAMPLE.COM",
	} {
		got, err := NormalizeEmail(s)
		want, werr := normalizeEmail(s)
		if got != want || (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
			t.Errorf("NormalizeEmail(%q) = %q, %v; the full checks say %q, %v", s, got, err, want, werr)
		}
	}
	if !isPlainAddress("reader0000001@example1.org") {
		t.Error("a plain address is not taken for one: the shortcut is never used")
	}
}

// FuzzNormalizeEmail checks the plain-address shortcut against the full
// checks.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"a@example.com", "A.b+c@Ex-ample.ORG", "a..b@x.y", "a@x", "a@-x.y", "ä@x.y", " a@x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeEmail(s)
		want, werr := normalizeEmail(s)
		if got != want || (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
			t.Fatalf("NormalizeEmail(%q) = %q, %v; the full checks say %q, %v", s, got, err, want, werr)
		}
	})
}

// BenchmarkNormalizeEmail measures a stored address read back (as the
// ledger does per record) and one the full checks must judge.
func BenchmarkNormalizeEmail(b *testing.B) {
	for _, s := range []string{"reader0000001@example1.org", " Ann.Smith@Bücher.example "} {
		b.Run(strings.TrimSpace(s), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizeEmail(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
