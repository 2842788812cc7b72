package subscribers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// PurposeBounce signs VERP return paths (bounces+TOKEN@bounce-domain).
const PurposeBounce Purpose = "bounce"

// VERP tokens.
//
// A VERP token names the subscriber a message went to and the edition it
// belonged to, so that a bounce or complaint sent back to the return path
// identifies both without trusting what the report says. It must fit an
// address's local part (at most 64 octets, RFC 5321) together with the
// bounce address's own local part and a '+', and survive MTAs that
// lower-case local parts. So it is lower-case base32 (a–z, 2–7) of 32
// bytes:
//
//	slot   4 bytes  the edition's slot, Unix minutes, big-endian
//	list   2 bytes  the first two bytes of SHA-256 of the list name
//	id    16 bytes  the subscriber ID (32 lower-case hex digits)
//	mac   10 bytes  HMAC-SHA256(secret, len(purpose) purpose payload), truncated
//
// which is VERPTokenLen (52) characters. The list is kept as a hash: the
// reader matches it against the subscriber's own lists. The MAC is 80 bits:
// a forger must guess it online, one bounce per guess.
const VERPTokenLen = 52

// VERPMaxLocal is the longest local part a bounce address may have so that
// local+TOKEN still fits in 64 octets.
const VERPMaxLocal = 64 - 1 - VERPTokenLen

const (
	verpPayloadLen = 4 + 2 + 16
	verpMACLen     = 10
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// BounceClaims is what a valid VERP token says.
type BounceClaims struct {
	SubscriberID string
	Slot         time.Time // the edition's slot, to the minute (UTC)
	listHash     [2]byte
}

// OnList reports whether the token was signed for a message of list.
func (c BounceClaims) OnList(list string) bool { return listHash(list) == c.listHash }

// ListAmong returns the one of names that the token was signed for, or ""
// when none (or, by a hash collision, more than one) matches.
func (c BounceClaims) ListAmong(names []string) string {
	found := ""
	for _, n := range names {
		if c.OnList(n) {
			if found != "" && found != n {
				return ""
			}
			found = n
		}
	}
	return found
}

func listHash(list string) [2]byte {
	sum := sha256.Sum256([]byte(list))
	return [2]byte{sum[0], sum[1]}
}

// SignBounce returns the VERP token for the message of list's edition built
// for slot, sent to the subscriber with subscriberID. ok is false when the
// ID is not the 32 lower-case hex digits the store assigns (an ID given by
// an import, for example): such a subscriber gets the plain bounce address.
func (s *Signer) SignBounce(subscriberID, list string, slot time.Time) (token string, ok bool) {
	var buf [VERPTokenLen]byte
	out, ok := s.AppendSignBounce(buf[:0], subscriberID, list, slot)
	if !ok {
		return "", false
	}
	return string(out), true
}

// AppendSignBounce appends the token SignBounce returns to dst and
// returns the extended slice, or dst and false when SignBounce would.
func (s *Signer) AppendSignBounce(dst []byte, subscriberID, list string, slot time.Time) ([]byte, bool) {
	if len(subscriberID) != 32 || !isLowerHex(subscriberID) {
		return dst, false
	}
	var raw [verpPayloadLen + verpMACLen]byte
	p := raw[:verpPayloadLen]
	binary.BigEndian.PutUint32(p[0:4], uint32(slot.Unix()/60))
	h := listHash(list)
	copy(p[4:6], h[:])
	for i := range 16 {
		p[6+i] = unhex(subscriberID[2*i])<<4 | unhex(subscriberID[2*i+1])
	}
	var sum [sha256.Size]byte
	copy(raw[verpPayloadLen:], s.appendMAC(sum[:0], PurposeBounce, p))
	return b32.AppendEncode(dst, raw[:]), true
}

// VerifyBounce checks a VERP token (any letter case) and returns its
// claims. Every failure returns ErrBadToken.
func (s *Signer) VerifyBounce(token string) (BounceClaims, error) {
	if len(token) != VERPTokenLen {
		return BounceClaims{}, ErrBadToken
	}
	raw, err := b32.DecodeString(strings.ToLower(token))
	if err != nil || len(raw) != verpPayloadLen+verpMACLen {
		return BounceClaims{}, ErrBadToken
	}
	p, got := raw[:verpPayloadLen], raw[verpPayloadLen:]
	var sum [sha256.Size]byte
	if !hmac.Equal(got, s.appendMAC(sum[:0], PurposeBounce, p)[:verpMACLen]) {
		return BounceClaims{}, ErrBadToken
	}
	c := BounceClaims{
		SubscriberID: hex.EncodeToString(p[6:22]),
		Slot:         time.Unix(int64(binary.BigEndian.Uint32(p[0:4]))*60, 0).UTC(),
	}
	copy(c.listHash[:], p[4:6])
	return c, nil
}

// VERPAddress returns the return path for token on the bounce address base
// ("bounces@bounce.example.org" → "bounces+TOKEN@bounce.example.org").
func VERPAddress(base, token string) (string, error) {
	local, domain, ok := strings.Cut(base, "@")
	if !ok || local == "" || domain == "" || strings.Contains(local, "+") {
		return "", fmt.Errorf("%w: bounce address %q: want local@domain without '+'", ErrInvalidEmail, base)
	}
	if len(local)+1+len(token) > 64 {
		return "", fmt.Errorf("%w: bounce address %q: the local part must be at most %d characters to leave room for the VERP token", ErrInvalidEmail, base, VERPMaxLocal)
	}
	return local + "+" + token + "@" + domain, nil
}

// CheckBounceAddress validates a configured bounce address.
func CheckBounceAddress(base string) error {
	if _, err := NormalizeEmail(base); err != nil {
		return err
	}
	_, err := VERPAddress(base, strings.Repeat("a", VERPTokenLen))
	return err
}

// VERPToken returns the token carried by a VERP address
// ("anything+TOKEN@domain"), or false. The token is not verified.
func VERPToken(addr string) (string, bool) {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", false
	}
	local := addr[:at]
	plus := strings.LastIndexByte(local, '+')
	if plus < 0 {
		return "", false
	}
	tok := local[plus+1:]
	if len(tok) != VERPTokenLen {
		return "", false
	}
	return tok, true
}
