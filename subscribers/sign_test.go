package subscribers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// BenchmarkSign measures the tokens a sender makes per message: the
// unsubscribe and preference links' (Sign) and the VERP return path's
// (SignBounce), for a store-assigned subscriber ID.
func BenchmarkSign(b *testing.B) {
	s := mustSigner(b, testSecret)
	b.Run("Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if tok := s.Sign(PurposeUnsubscribe, testID, "daily", time.Time{}); len(tok) < 40 {
				b.Fatal(tok)
			}
		}
	})
	b.Run("SignBounce", func(b *testing.B) {
		slot := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.SignBounce(testID, "daily", slot); !ok {
				b.Fatal("not signed")
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		tok := s.Sign(PurposeUnsubscribe, testID, "daily", time.Time{})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Verify(PurposeUnsubscribe, tok, tokenNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// refSign is the token format as the Signer documents it, written
// plainly: Sign must give exactly this.
func refSign(secret []byte, p Purpose, subject, list string, expires time.Time) string {
	var flags byte
	subj := []byte(subject)
	if isLowerHex(subject) {
		flags |= flagHexSubject
		subj, _ = hex.DecodeString(subject)
	}
	payload := []byte{tokenVersion, purposeCodes[p], flags}
	payload = binary.AppendUvarint(payload, uint64(len(subj)))
	payload = append(payload, subj...)
	payload = binary.AppendUvarint(payload, uint64(len(list)))
	payload = append(payload, list...)
	payload = binary.AppendUvarint(payload, expiryUnix(expires))
	h := hmac.New(sha256.New, secret)
	h.Write([]byte{byte(len(p))})
	h.Write([]byte(p))
	h.Write(payload)
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(h.Sum(nil)[:macLen])
}

// refSignBounce is the VERP token format written plainly.
func refSignBounce(secret []byte, id, list string, slot time.Time) string {
	p := make([]byte, 6, verpPayloadLen)
	binary.BigEndian.PutUint32(p[0:4], uint32(slot.Unix()/60))
	lh := sha256.Sum256([]byte(list))
	copy(p[4:6], lh[:2])
	raw, _ := hex.DecodeString(id)
	p = append(p, raw...)
	h := hmac.New(sha256.New, secret)
	h.Write([]byte{byte(len(PurposeBounce))})
	h.Write([]byte(PurposeBounce))
	h.Write(p)
	return b32.EncodeToString(append(p, h.Sum(nil)[:verpMACLen]...))
}

func TestSignMatchesFormat(t *testing.T) {
	s := mustSigner(t, testSecret)
	long := strings.Repeat("ab", 100)
	exp := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, subject := range []string{testID, "", "a", "0", "ab", "AB", "abc", "abcg", "s0123456789", "ünï", long, long + "x", strings.Repeat("z", 300)} {
		for _, list := range []string{"", "daily", "ünï", strings.Repeat("l", 200)} {
			for _, p := range []Purpose{PurposeConfirm, PurposeUnsubscribe, PurposePreferences, PurposeData, PurposeClick, "other"} {
				for _, e := range []time.Time{{}, exp, time.Unix(-5, 0)} {
					got, want := s.Sign(p, subject, list, e), refSign(testSecret, p, subject, list, e)
					if got != want {
						t.Errorf("Sign(%q, %q, %q, %v) = %q, want %q", p, subject, list, e, got, want)
					}
					if got := string(s.AppendSign([]byte("x/"), p, subject, list, e)); got != "x/"+want {
						t.Errorf("AppendSign = %q, want %q", got, "x/"+want)
					}
				}
			}
		}
	}
	slot := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	for _, id := range []string{"", "abc", strings.ToUpper(testID), testID + "00", "g" + testID[1:]} {
		if tok, ok := s.SignBounce(id, "daily", slot); ok || tok != "" {
			t.Errorf("SignBounce(%q) = %q, %v; want no token", id, tok, ok)
		}
		if got, ok := s.AppendSignBounce([]byte("b+"), id, "daily", slot); ok || string(got) != "b+" {
			t.Errorf("AppendSignBounce(%q) = %q, %v; want b+ and false", id, got, ok)
		}
	}
	for _, list := range []string{"", "daily", "ünï"} {
		got, ok := s.SignBounce(testID, list, slot)
		want := refSignBounce(testSecret, testID, list, slot)
		if !ok || got != want {
			t.Errorf("SignBounce(%q) = %q, %v; want %q", list, got, ok, want)
		}
		if got, ok := s.AppendSignBounce([]byte("b+"), testID, list, slot); !ok || string(got) != "b+"+want {
			t.Errorf("AppendSignBounce(%q) = %q, %v; want %q", list, got, ok, "b+"+want)
		}
	}
}
