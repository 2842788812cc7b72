package subscribers

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
)

// ErrInvalidEmail is wrapped by every address validation error.
var ErrInvalidEmail = errors.New("invalid email address")

// NormalizeEmail validates a bare address and returns its canonical form:
// trimmed and lower-cased. It rejects display names, control characters
// (CR and LF above all: they must never reach a header), addresses without
// a dotted domain, and anything over 254 octets.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidEmail)
	case len(s) > 254:
		return "", fmt.Errorf("%w: longer than 254 characters", ErrInvalidEmail)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", fmt.Errorf("%w: contains control characters", ErrInvalidEmail)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", fmt.Errorf("%w: %q", ErrInvalidEmail, s)
	}
	at := strings.LastIndexByte(a.Address, '@')
	local, domain := a.Address[:at], a.Address[at+1:]
	if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") || strings.HasPrefix(domain, "[") {
		return "", fmt.Errorf("%w: %q has no valid domain", ErrInvalidEmail, s)
	}
	return strings.ToLower(a.Address), nil
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
