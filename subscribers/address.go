package subscribers

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidEmail is wrapped by every address validation error.
var ErrInvalidEmail = errors.New("invalid email address")

// NormalizeEmail validates a bare address and returns its canonical form:
// trimmed and lower-cased. It rejects display names, control characters
// (CR and LF above all: they must never reach a header, and neither must
// the C1 control NEL, U+0085), spaces and invisible format characters
// inside the address (U+00A0, U+2028, U+202E and the like, which mail.ParseAddress
// lets through as UTF-8), invalid UTF-8, addresses without a dotted domain,
// domain labels that are empty, longer than 63 octets or that start or end
// with '-', local parts over 64 octets, and anything over 254 octets.
func NormalizeEmail(s string) (string, error) {
	if isPlainAddress(s) {
		// What the checks below let through unchanged, but for the
		// case, without net/mail's parse: stored addresses, read back
		// on every send, are all like this.
		return strings.ToLower(s), nil
	}
	return normalizeEmail(s)
}

// isPlainAddress reports whether s is a dot-atom local part of at most 64
// octets of letters, digits and !#$%&'*+/=?^_`{|}~.-, "@", and a domain
// validDomain accepts made of letters, digits, '-' and '.', at most 254
// octets in all: an address NormalizeEmail only lower-cases.
func isPlainAddress(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at > 64 || len(s) > 254 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' ||
			strings.IndexByte("!#$%&'*+/=?^_`{|}~", c) >= 0) {
			return false
		}
	}
	for i := 0; i < len(domain); i++ {
		c := domain[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return validDomain(domain)
}

// normalizeEmail is NormalizeEmail for any input.
func normalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidEmail)
	case len(s) > 254:
		return "", fmt.Errorf("%w: longer than 254 characters", ErrInvalidEmail)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidEmail)
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", fmt.Errorf("%w: contains control characters", ErrInvalidEmail)
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) }):
		return "", fmt.Errorf("%w: %q contains spaces or invisible characters", ErrInvalidEmail, s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", fmt.Errorf("%w: %q", ErrInvalidEmail, s)
	}
	at := strings.LastIndexByte(a.Address, '@')
	local, domain := a.Address[:at], a.Address[at+1:]
	if local == "" || len(local) > 64 {
		return "", fmt.Errorf("%w: %q has no valid local part", ErrInvalidEmail, s)
	}
	if !validDomain(domain) {
		return "", fmt.Errorf("%w: %q has no valid domain", ErrInvalidEmail, s)
	}
	return strings.ToLower(a.Address), nil
}

// validDomain reports whether domain is a dotted host name whose labels are
// 1–63 octets and neither start nor end with '-'. Address literals
// ("[192.0.2.1]") are refused. Non-ASCII labels (internationalized domain
// names) are accepted as they are.
func validDomain(domain string) bool {
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") {
		return false
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
	}
	return true
}

// ParseAddress parses a From or Reply-To value, "Name <addr>" or "addr",
// refusing control characters.
func ParseAddress(s string) (*mail.Address, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("%w: contains control characters", ErrInvalidEmail)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidEmail, s, err)
	}
	if _, err := NormalizeEmail(a.Address); err != nil {
		return nil, err
	}
	return a, nil
}
