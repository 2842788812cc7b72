package render

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// oneLine collapses every run of white space and control characters into
// one space and trims the ends. Feed titles go through it before reaching
// a subject or a single-line field.
func oneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || isControl(r) || r == utf8.RuneError {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// paragraphs splits text at blank lines, each paragraph made one line.
func paragraphs(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var out []string
	for _, p := range strings.Split(s, "\n\n") {
		if p = oneLine(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// truncate cuts s to at most n runes, at a word boundary when one is near,
// and marks the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := 0
	for i := range s {
		if n == 0 {
			cut = i
			break
		}
		n--
	}
	t := s[:cut]
	if sp := strings.LastIndexByte(t, ' '); sp > len(t)*2/3 {
		t = t[:sp]
	}
	return strings.TrimRightFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) }) + "…"
}

// wrap folds s (made one line first) into lines of at most width runes,
// breaking at spaces; a word longer than width stays whole.
func wrap(s string, width int) string {
	words := strings.Fields(oneLine(s))
	var b strings.Builder
	col := 0
	for _, w := range words {
		n := utf8.RuneCountInString(w)
		switch {
		case col == 0:
		case col+1+n > width:
			b.WriteByte('\n')
			col = 0
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += n
	}
	return b.String()
}

// indent prefixes every line of s with n spaces.
func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// tidyText normalises the text part: no trailing spaces, at most one blank
// line in a row, no leading blank lines, one final newline.
func tidyText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var b strings.Builder
	blank := 0
	for _, l := range lines {
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		if l == "" {
			blank++
			continue
		}
		if b.Len() > 0 && blank > 0 {
			b.WriteByte('\n')
		}
		blank = 0
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

func htmlUnescape(s string) string { return html.UnescapeString(s) }
