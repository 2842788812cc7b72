package subscribers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
	"sync"
	"time"
)

// Purpose says what a token may be used for. It is bound into the token's
// MAC, so a token signed for one purpose never verifies for another.
type Purpose string

// Token purposes.
const (
	PurposeConfirm     Purpose = "confirm"     // double opt-in confirmation link
	PurposeUnsubscribe Purpose = "unsubscribe" // List-Unsubscribe and the visible unsubscribe link
	PurposePreferences Purpose = "preferences" // preference page
	PurposeData        Purpose = "data"        // self-service export and deletion of one's own data
	PurposeClick       Purpose = "click"       // click-tracking redirect
)

// ErrBadToken is the only error Verify returns: for a forged, tampered,
// truncated, malformed or expired token and for one signed for another
// purpose alike, so that callers answer every bad token the same way.
var ErrBadToken = errors.New("subscribers: bad token")

// MinSecretLen is the shortest secret NewSigner accepts, in bytes.
const MinSecretLen = 32

const (
	tokenVersion = 1
	macLen       = 20 // bytes of HMAC-SHA256 kept: 160 bits
	maxTokenLen  = 2048

	flagHexSubject = 1 << 0 // subject stored as the bytes its lower-case hex spells
)

// purposeCodes gives the known purposes a one-byte code in the payload.
// Any other purpose is coded 0; it is still told apart by the MAC, which
// covers the purpose's full name.
var purposeCodes = map[Purpose]byte{
	PurposeConfirm:     1,
	PurposeUnsubscribe: 2,
	PurposePreferences: 3,
	PurposeData:        4,
	PurposeClick:       5,
}

var b64 = base64.RawURLEncoding.Strict()

// Claims is what a valid token says.
type Claims struct {
	Subject string    // subscriber ID (never an address)
	List    string    // list name; may be empty
	Expires time.Time // zero: never expires
}

// Signer makes and checks HMAC-SHA256 tokens. It is safe for concurrent use.
//
// A token is base64url(payload) "." base64url(mac), both without padding,
// so it holds only [A-Za-z0-9_.-] and is safe in URL paths and headers.
// The payload is: version (1 byte), purpose code (1 byte), flags (1 byte),
// then the subject and the list, each as a uvarint length and its bytes,
// then the expiry as uvarint Unix seconds (0 = never). A subject written in
// lower-case hex of even length is stored as the bytes it spells, so a
// 32-hex-digit ID costs 16 bytes. The MAC is the first 20 bytes (160 bits)
// of HMAC-SHA256(secret, len(purpose) || purpose || payload), compared with
// hmac.Equal. A token for a 32-hex-digit subject and a short list name is
// about 70 characters long.
type Signer struct {
	pool sync.Pool // of *macState keyed with the secret
}

// macState is an HMAC-SHA256 keyed with a Signer's secret and the space
// to compute one MAC without allocating.
type macState struct {
	h   hash.Hash
	in  []byte // what the MAC covers
	sum []byte
}

// NewSigner returns a Signer keyed with secret, which must be at least
// MinSecretLen (32) bytes of random data. The secret is copied.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("subscribers: token secret is %d bytes, need at least %d", len(secret), MinSecretLen)
	}
	key := append([]byte(nil), secret...)
	s := &Signer{}
	s.pool.New = func() any {
		return &macState{h: hmac.New(sha256.New, key), in: make([]byte, 0, 128), sum: make([]byte, 0, sha256.Size)}
	}
	return s, nil
}

// Sign returns a token for purpose p naming subject (a subscriber ID, never
// an email address) and list (may be empty). A zero expires means the token
// never expires; otherwise it is valid until, not including, that second.
// Sign panics if p is empty or longer than 255 bytes: purposes are
// constants, so that is a programming error.
func (s *Signer) Sign(p Purpose, subject string, list string, expires time.Time) string {
	var buf [128]byte
	return string(s.AppendSign(buf[:0], p, subject, list, expires))
}

// AppendSign appends the token Sign returns to dst and returns the
// extended slice (a URL built around a token costs one allocation).
func (s *Signer) AppendSign(dst []byte, p Purpose, subject string, list string, expires time.Time) []byte {
	if len(p) == 0 || len(p) > 255 {
		panic(fmt.Sprintf("subscribers: Sign: bad purpose %q", p))
	}
	var buf [96]byte
	payload := buf[:0]
	var flags byte
	hexSubject := isLowerHex(subject)
	if hexSubject {
		flags |= flagHexSubject
	}
	payload = append(payload, tokenVersion, purposeCodes[p], flags)
	if hexSubject {
		payload = binary.AppendUvarint(payload, uint64(len(subject)/2))
		for i := 0; i < len(subject); i += 2 {
			payload = append(payload, unhex(subject[i])<<4|unhex(subject[i+1]))
		}
	} else {
		payload = binary.AppendUvarint(payload, uint64(len(subject)))
		payload = append(payload, subject...)
	}
	payload = binary.AppendUvarint(payload, uint64(len(list)))
	payload = append(payload, list...)
	payload = binary.AppendUvarint(payload, expiryUnix(expires))

	var sum [sha256.Size]byte
	mac := s.appendMAC(sum[:0], p, payload)[:macLen]
	dst = b64.AppendEncode(dst, payload)
	dst = append(dst, '.')
	return b64.AppendEncode(dst, mac)
}

// unhex is the value of a lower-case hex digit.
func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// Verify checks that token was made by Sign with this secret for purpose p
// and has not expired at now, and returns its claims. Every failure returns
// ErrBadToken and zero Claims.
func (s *Signer) Verify(p Purpose, token string, now time.Time) (Claims, error) {
	if len(p) == 0 || len(p) > 255 || len(token) > maxTokenLen {
		return Claims{}, ErrBadToken
	}
	// Only the token alphabet: base64 decoding skips CR and LF, which would
	// otherwise let other spellings of a valid token through.
	if strings.ContainsFunc(token, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) {
		return Claims{}, ErrBadToken
	}
	encPayload, encMAC, ok := strings.Cut(token, ".")
	if !ok || b64.EncodedLen(macLen) != len(encMAC) {
		return Claims{}, ErrBadToken
	}
	payload, err := b64.DecodeString(encPayload)
	if err != nil {
		return Claims{}, ErrBadToken
	}
	gotMAC, err := b64.DecodeString(encMAC)
	var sum [sha256.Size]byte
	if err != nil || !hmac.Equal(gotMAC, s.appendMAC(sum[:0], p, payload)[:macLen]) {
		return Claims{}, ErrBadToken
	}
	// The payload is authentic from here on; still parse it defensively.
	c, code, ok := parsePayload(payload)
	if !ok || code != purposeCodes[p] {
		return Claims{}, ErrBadToken
	}
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return Claims{}, ErrBadToken
	}
	return c, nil
}

// appendMAC appends HMAC-SHA256(secret, len(p) || p || payload), all 32
// bytes, to dst.
func (s *Signer) appendMAC(dst []byte, p Purpose, payload []byte) []byte {
	m := s.pool.Get().(*macState)
	// The hash is an interface: what it reads escapes, so it reads the
	// state's own copy, not the caller's (stack) memory.
	m.in = append(append(append(m.in[:0], byte(len(p))), p...), payload...)
	m.h.Reset()
	m.h.Write(m.in)
	m.sum = m.h.Sum(m.sum[:0])
	dst = append(dst, m.sum...)
	s.pool.Put(m)
	return dst
}

func parsePayload(b []byte) (c Claims, code byte, ok bool) {
	if len(b) < 3 || b[0] != tokenVersion || b[2]&^flagHexSubject != 0 {
		return Claims{}, 0, false
	}
	code, flags := b[1], b[2]
	b = b[3:]
	subj, b, ok := readBytes(b)
	if !ok {
		return Claims{}, 0, false
	}
	list, b, ok := readBytes(b)
	if !ok {
		return Claims{}, 0, false
	}
	exp, n := binary.Uvarint(b)
	if n <= 0 || n != len(b) || exp > math.MaxInt64 {
		return Claims{}, 0, false
	}
	if flags&flagHexSubject != 0 {
		c.Subject = hex.EncodeToString(subj)
	} else {
		c.Subject = string(subj)
	}
	c.List = string(list)
	if exp != 0 {
		c.Expires = time.Unix(int64(exp), 0).UTC()
	}
	return c, code, true
}

func readBytes(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	b = b[k:]
	return b[:n], b[n:], true
}

// expiryUnix encodes an expiry: 0 for never; times at or before the Unix
// epoch become 1 (long expired) so they never read as "never".
func expiryUnix(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	u := t.Unix()
	if u < 1 {
		return 1
	}
	return uint64(u)
}

func isLowerHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
