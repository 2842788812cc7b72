package subscribers

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestVERP(t *testing.T) {
	s, err := NewSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	id := "0123456789abcdef0123456789abcdef"
	slot := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	tok, ok := s.SignBounce(id, "daily", slot)
	if !ok {
		t.Fatal("SignBounce refused a store ID")
	}
	if len(tok) != VERPTokenLen || !regexp.MustCompile(`^[a-z2-7]+$`).MatchString(tok) {
		t.Fatalf("token %q: want %d characters of lower-case base32", tok, VERPTokenLen)
	}
	addr, err := VERPAddress("bounces@bounce.example.org", tok)
	if err != nil {
		t.Fatal(err)
	}
	if local := addr[:strings.IndexByte(addr, '@')]; len(local) > 64 {
		t.Errorf("local part %d octets", len(local))
	}
	if _, err := NormalizeEmail(addr); err != nil {
		t.Errorf("VERP address %q is not a valid address: %v", addr, err)
	}
	got, ok := VERPToken("<" + strings.ToUpper(addr) + ">")
	if !ok {
		t.Fatal("VERPToken found nothing")
	}
	c, err := s.VerifyBounce(got) // upper-cased by some MTA on the way
	if err != nil {
		t.Fatal(err)
	}
	if c.SubscriberID != id || !c.Slot.Equal(slot) || !c.OnList("daily") || c.OnList("weekly") {
		t.Errorf("claims = %+v", c)
	}
	if l := c.ListAmong([]string{"weekly", "daily"}); l != "daily" {
		t.Errorf("ListAmong = %q", l)
	}

	t.Run("Rejected", func(t *testing.T) {
		other, _ := NewSigner([]byte(strings.Repeat("x", 32)))
		forged, _ := other.SignBounce(id, "daily", slot)
		flipped := []byte(tok)
		flipped[10] ^= 1
		for name, bad := range map[string]string{
			"OtherSecret": forged, "Flipped": string(flipped), "Short": tok[:51], "Empty": "",
			"NotBase32": strings.Repeat("1", VERPTokenLen), "Confirm": s.Sign(PurposeConfirm, id, "daily", time.Time{}),
		} {
			if _, err := s.VerifyBounce(bad); !errors.Is(err, ErrBadToken) {
				t.Errorf("%s: err = %v", name, err)
			}
		}
	})
	t.Run("NonStoreID", func(t *testing.T) {
		if _, ok := s.SignBounce("imported-7", "daily", slot); ok {
			t.Error("signed a non-hex ID")
		}
	})
	t.Run("BounceAddress", func(t *testing.T) {
		for _, bad := range []string{"bounces", "b+x@example.org", "averyveryverylonglocal@example.org"} {
			if err := CheckBounceAddress(bad); err == nil {
				t.Errorf("%q accepted", bad)
			}
		}
		if err := CheckBounceAddress("bounces@bounce.example.org"); err != nil {
			t.Error(err)
		}
	})
}
