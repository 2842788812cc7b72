package render

import (
	"net/url"
	"strings"
	"sync/atomic"
)

// linkCheck is isHTTPURL for the links of many recipients, which differ
// only in a token at their end (BASE/unsubscribe/TOKEN,
// BASE/preferences/TOKEN): it remembers the last two prefixes of links it
// found good whose every extension by token characters ([A-Za-z0-9_.-])
// is good as well, and answers for such links without parsing them. Safe
// for concurrent use.
type linkCheck struct {
	prefix [2]atomic.Pointer[string]
	next   atomic.Uint32 // which slot the next prefix replaces
}

func (c *linkCheck) isHTTPURL(s string) bool {
	prefix := s[:len(s)-tokenTailLen(s)]
	for i := range c.prefix {
		if p := c.prefix[i].Load(); p != nil && *p == prefix {
			return true
		}
	}
	if !isHTTPURL(s) {
		return false
	}
	if extendsHTTPURL(prefix) {
		p := prefix
		c.prefix[c.next.Add(1)%2].Store(&p)
	}
	return true
}

// tokenTailLen returns the length of the longest suffix of s made of
// token characters.
func tokenTailLen(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			break
		}
		n++
	}
	return n
}

// extendsHTTPURL reports whether isHTTPURL holds for p followed by any
// token characters. They are no space or control character, none of
// "?#%/:@[]", so appended to an http(s) URL whose authority (up to the
// first '/' after "//") ends within p, with no '?' or '#' in p, they only
// lengthen its path: url.Parse gives the same scheme and host and no
// error (unescaping fails only on a '%' without two hex digits after it,
// all within p).
func extendsHTTPURL(p string) bool {
	if p == "" || strings.ContainsAny(p, "?#") || !isHTTPURL(p) {
		return false
	}
	u, err := url.Parse(p)
	return err == nil && u.Path != ""
}
