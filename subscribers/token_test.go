package subscribers

import (
	"bytes"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
	tokenNow    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testID      = "3f2a9c0b7e5d41a8b6c4d2e0f1a3b5c7"
)

func mustSigner(t testing.TB, secret []byte) *Signer {
	t.Helper()
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSigner(t *testing.T) {
	t.Run("ShortSecret", func(t *testing.T) {
		if _, err := NewSigner(make([]byte, 31)); err == nil {
			t.Fatal("NewSigner accepted a 31-byte secret")
		}
		if _, err := NewSigner(nil); err == nil {
			t.Fatal("NewSigner accepted a nil secret")
		}
	})
	t.Run("SecretCopied", func(t *testing.T) {
		secret := bytes.Clone(testSecret)
		s := mustSigner(t, secret)
		tok := s.Sign(PurposeConfirm, testID, "daily", time.Time{})
		secret[0] ^= 0xff // the caller reuses its buffer
		if _, err := s.Verify(PurposeConfirm, tok, tokenNow); err != nil {
			t.Fatalf("Verify after the caller changed its secret buffer: %v", err)
		}
	})
}

func TestTokenRoundTrip(t *testing.T) {
	s := mustSigner(t, testSecret)
	exp := tokenNow.Add(48 * time.Hour)
	tests := []struct {
		name          string
		p             Purpose
		subject, list string
		expires       time.Time
	}{
		{"HexID", PurposeConfirm, testID, "daily", exp},
		{"NoExpiry", PurposeUnsubscribe, testID, "daily", time.Time{}},
		{"NoList", PurposePreferences, testID, "", time.Time{}},
		{"UpperHexKeptAsIs", PurposeData, strings.ToUpper(testID), "weekly", exp},
		{"OddHex", PurposeClick, "abc", "daily", exp},
		{"NonHexSubject", PurposeClick, "sub/42:ü", "tech-news_2", exp},
		{"CustomPurpose", Purpose("digest-archive"), testID, "daily", exp},
		{"LongList", PurposeUnsubscribe, testID, strings.Repeat("l", 64), exp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := s.Sign(tt.p, tt.subject, tt.list, tt.expires)
			got, err := s.Verify(tt.p, tok, tokenNow)
			if err != nil {
				t.Fatalf("Verify(%q): %v", tok, err)
			}
			want := Claims{Subject: tt.subject, List: tt.list}
			if !tt.expires.IsZero() {
				want.Expires = tt.expires.Truncate(time.Second).UTC()
			}
			if got != want {
				t.Errorf("claims = %+v, want %+v", got, want)
			}
		})
	}
}

func TestTokenShape(t *testing.T) {
	s := mustSigner(t, testSecret)
	safe := regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
	for _, subject := range []string{testID, "x", "a b\r\n<>\"'?&=/+", strings.Repeat("\xff", 40)} {
		for _, p := range []Purpose{PurposeConfirm, PurposeUnsubscribe, PurposePreferences, PurposeData, PurposeClick} {
			tok := s.Sign(p, subject, "daily", tokenNow.Add(time.Hour))
			if !safe.MatchString(tok) {
				t.Errorf("Sign(%s, %q) = %q: characters outside [A-Za-z0-9_.-]", p, subject, tok)
			}
		}
	}
	tok := s.Sign(PurposeUnsubscribe, testID, "daily", tokenNow.Add(365*24*time.Hour))
	if len(tok) >= 110 {
		t.Errorf("token for a 32-hex-digit ID is %d characters (%s), want under 110", len(tok), tok)
	}
	t.Logf("unsubscribe token: %d characters: %s", len(tok), tok)
}

func TestTokenRejected(t *testing.T) {
	s := mustSigner(t, testSecret)
	good := s.Sign(PurposeUnsubscribe, testID, "daily", tokenNow.Add(time.Hour))
	payload, mac, _ := strings.Cut(good, ".")

	flip := func(enc string, i int) string {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			t.Fatal(err)
		}
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	// A payload that claims a later expiry, with the old MAC.
	extended := s.Sign(PurposeUnsubscribe, testID, "daily", tokenNow.Add(1000*time.Hour))
	extendedPayload, _, _ := strings.Cut(extended, ".")

	tests := []struct {
		name  string
		p     Purpose
		token string
		now   time.Time
		s     *Signer
	}{
		{"WrongPurpose", PurposeConfirm, good, tokenNow, s},
		{"WrongPurposeClick", PurposeClick, good, tokenNow, s},
		{"TamperedPayloadSubject", PurposeUnsubscribe, flip(payload, 5) + "." + mac, tokenNow, s},
		{"TamperedPayloadPurposeCode", PurposeConfirm, flip(payload, 1) + "." + mac, tokenNow, s},
		{"TamperedExpiry", PurposeUnsubscribe, extendedPayload + "." + mac, tokenNow, s},
		{"TamperedMAC", PurposeUnsubscribe, payload + "." + flip(mac, 0), tokenNow, s},
		{"TamperedMACLastByte", PurposeUnsubscribe, payload + "." + flip(mac, 19), tokenNow, s},
		{"Expired", PurposeUnsubscribe, good, tokenNow.Add(time.Hour), s},
		{"LongExpired", PurposeUnsubscribe, good, tokenNow.Add(10000 * time.Hour), s},
		{"WrongSecret", PurposeUnsubscribe, good, tokenNow, mustSigner(t, otherSecret)},
		{"TruncatedMAC", PurposeUnsubscribe, good[:len(good)-1], tokenNow, s},
		{"TruncatedPayload", PurposeUnsubscribe, payload[1:] + "." + mac, tokenNow, s},
		{"OnlyPayload", PurposeUnsubscribe, payload, tokenNow, s},
		{"OnlyMAC", PurposeUnsubscribe, "." + mac, tokenNow, s},
		{"ExtraDot", PurposeUnsubscribe, good + ".x", tokenNow, s},
		{"Padding", PurposeUnsubscribe, good + "=", tokenNow, s},
		{"StdAlphabet", PurposeUnsubscribe, strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/", tokenNow, s},
		{"Empty", PurposeUnsubscribe, "", tokenNow, s},
		{"Garbage", PurposeUnsubscribe, "not a token", tokenNow, s},
		{"Huge", PurposeUnsubscribe, strings.Repeat("A", 1<<16) + "." + mac, tokenNow, s},
		{"EmptyPurpose", "", good, tokenNow, s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.s.Verify(tt.p, tt.token, tt.now)
			if !errors.Is(err, ErrBadToken) || err != ErrBadToken {
				t.Fatalf("Verify = %+v, %v; want ErrBadToken itself", c, err)
			}
			if c != (Claims{}) {
				t.Errorf("claims = %+v on failure, want zero", c)
			}
		})
	}

	t.Run("ValidUntilExpiry", func(t *testing.T) {
		if _, err := s.Verify(PurposeUnsubscribe, good, tokenNow.Add(time.Hour-time.Nanosecond)); err != nil {
			t.Fatalf("Verify just before expiry: %v", err)
		}
	})
	t.Run("NonCanonicalBase64", func(t *testing.T) {
		// A MAC of 20 bytes leaves 2 unused bits in its last character;
		// setting them must not give a second valid spelling of the token.
		last := mac[len(mac)-1]
		i := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last)
		alt := mac[:len(mac)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i|1])
		if alt == mac {
			alt = mac[:len(mac)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i|2])
		}
		if _, err := s.Verify(PurposeUnsubscribe, payload+"."+alt, tokenNow); err != ErrBadToken {
			t.Fatalf("Verify accepted a non-canonical spelling %q of %q", payload+"."+alt, good)
		}
	})
}

func TestSignPanicsOnEmptyPurpose(t *testing.T) {
	s := mustSigner(t, testSecret)
	defer func() {
		if recover() == nil {
			t.Fatal("Sign with an empty purpose did not panic")
		}
	}()
	s.Sign("", testID, "", time.Time{})
}

func TestSignerConcurrent(t *testing.T) {
	s := mustSigner(t, testSecret)
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 200 {
				subj := strings.Repeat(string(rune('a'+g)), i%7+1)
				tok := s.Sign(PurposeClick, subj, "daily", time.Time{})
				c, verr := s.Verify(PurposeClick, tok, tokenNow)
				if verr != nil || c.Subject != subj {
					err = errors.New("concurrent round trip failed for " + subj)
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// FuzzVerify checks that Verify never panics and never accepts a token that
// Sign did not produce: whatever it accepts must be exactly what Sign
// returns for the claims it reports.
func FuzzVerify(f *testing.F) {
	s := mustSigner(f, testSecret)
	purposes := []Purpose{PurposeConfirm, PurposeUnsubscribe, PurposePreferences, PurposeData, PurposeClick}
	for i, p := range purposes {
		f.Add(uint8(i), s.Sign(p, testID, "daily", tokenNow.Add(time.Hour)))
		f.Add(uint8(i), s.Sign(p, "x", "", time.Time{}))
	}
	f.Add(uint8(0), "")
	f.Add(uint8(1), ".")
	f.Add(uint8(2), "AQIB.AAAA")
	f.Fuzz(func(t *testing.T, pi uint8, token string) {
		p := purposes[int(pi)%len(purposes)]
		c, err := s.Verify(p, token, tokenNow)
		if err != nil {
			if err != ErrBadToken {
				t.Fatalf("Verify error %v, want ErrBadToken", err)
			}
			return
		}
		if re := s.Sign(p, c.Subject, c.List, c.Expires); re != token {
			t.Fatalf("Verify accepted %q with claims %+v, but Sign gives %q", token, c, re)
		}
		if !c.Expires.IsZero() && !tokenNow.Before(c.Expires) {
			t.Fatalf("Verify accepted an expired token: %+v", c)
		}
	})
}
