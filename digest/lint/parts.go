package lint

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

var (
	textURL     = regexp.MustCompile(`https?://[^\s<>"'` + "`" + `]+`)
	unsubWords  = regexp.MustCompile(`(?i)unsubscri|opt[- ]?out|désabonn|desabonn|abmelden|abbestellen|darse de baja|cancelar.*suscripci|uitschrijven|afmelden|disiscri|cancella|annulla.*iscrizione|descadastr|wypisz`)
	numbered    = regexp.MustCompile(`^\d+[.)]\s`)
	digitLetter = regexp.MustCompile(`\d.*\p{L}{3}|\p{L}{3}.*\d`)
)

// textLinks returns the http(s) URLs of the text part.
func textLinks(txt string) []string {
	var out []string
	for _, u := range textURL.FindAllString(txt, -1) {
		out = append(out, strings.TrimRight(u, ".,;:!?)]}»"))
	}
	return out
}

// bothParts applies the rules that compare or need both parts.
func (c *checker) bothParts(m *message) {
	if m.text == nil || m.html == nil || m.htmlScan == nil {
		return
	}
	s := m.htmlScan
	txt := string(m.text)

	// 4.2: the same links in both parts.
	inText := map[string]bool{}
	for _, u := range textLinks(txt) {
		inText[linkKey(u)] = true
	}
	inHTML := map[string]bool{}
	for _, l := range s.links {
		if low := strings.ToLower(l.href); strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://") {
			inHTML[linkKey(l.href)] = true
		}
	}
	if miss := missing(inHTML, inText); len(miss) > 0 {
		c.add("4.2 same-links", Error, "links in the HTML part but not in the text part: %s", list(miss))
	}
	// A URL written as text in both parts (in a reader's name, say) is
	// prose, not a link the HTML part lacks.
	for _, u := range textLinks(s.visibleText.String()) {
		inHTML[linkKey(u)] = true
	}
	if miss := missing(inText, inHTML); len(miss) > 0 {
		c.add("4.2 same-links", Error, "links in the text part but not in the HTML part: %s", list(miss))
	}

	if c.opt.System {
		return
	}
	// 4.3: a visible unsubscribe link in both parts.
	unsub := unsubscribeURL(m.header)
	found := false
	for _, l := range s.links {
		if l.visible && strings.TrimSpace(l.text) != "" && l.href != "" &&
			(unsub != "" && l.href == unsub || unsubWords.MatchString(l.text) || strings.Contains(strings.ToLower(l.href), "unsubscribe")) {
			found = true
			break
		}
	}
	if !found {
		c.add("4.3 body-unsubscribe", Error, "the HTML part has no visible unsubscribe link")
	}
	if !(unsub != "" && inText[linkKey(unsub)]) && !textUnsubscribe(txt) {
		c.add("4.3 body-unsubscribe", Error, "the text part has no unsubscribe link")
	}

	// 4.3: the sender's postal address in the body.
	htmlText := normSpace(s.visibleText.String())
	normTxt := normSpace(txt)
	if strings.Contains(normTxt, "postal_address") || strings.Contains(htmlText, "postal_address") {
		c.add("4.3 postal-address", Warning, "the footer shows a reminder instead of an address: set site.postal_address in the configuration")
		return
	}
	if addr := strings.TrimSpace(c.opt.PostalAddress); addr != "" {
		var noHTML, noText []string
		for _, line := range strings.Split(addr, "\n") {
			if line = normSpace(line); line == "" {
				continue
			}
			if !strings.Contains(htmlText, line) && !strings.Contains(htmlText, normSpace(htmlEscapeText(line))) {
				noHTML = append(noHTML, line)
			}
			if !strings.Contains(normTxt, line) {
				noText = append(noText, line)
			}
		}
		if len(noHTML) > 0 {
			c.add("4.3 postal-address", Error, "the HTML part does not show the postal address (visibly): %q missing", list(noHTML))
		}
		if len(noText) > 0 {
			c.add("4.3 postal-address", Error, "the text part does not show the postal address: %q missing", list(noText))
		}
		return
	}
	if !looksLikeAddress(txt) {
		c.add("4.3 postal-address", Warning, "no line of the text part's footer looks like a postal address (a line with a number and a name, without a link)")
	}
}

// textUnsubscribe finds a line of the text that offers unsubscribing with
// a link.
func textUnsubscribe(txt string) bool {
	lines := strings.Split(txt, "\n")
	for i, l := range lines {
		if !unsubWords.MatchString(l) {
			continue
		}
		if textURL.MatchString(l) || i+1 < len(lines) && textURL.MatchString(lines[i+1]) {
			return true
		}
	}
	return false
}

// looksLikeAddress looks in the footer of the text part (after the
// unsubscribe line, else the last ten lines) for a line with a number and
// a word and no link: "1 Quay Street, Portsmouth".
func looksLikeAddress(txt string) bool {
	var lines []string
	for _, l := range strings.Split(txt, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	footer := max(0, len(lines)-10)
	for i, l := range lines {
		if unsubWords.MatchString(l) {
			footer = i + 1
		}
	}
	for _, l := range lines[footer:] {
		if textURL.MatchString(l) || strings.Contains(l, "@") || numbered.MatchString(l) {
			continue
		}
		if digitLetter.MatchString(l) {
			return true
		}
	}
	return false
}

// linkKey compares links whatever their percent-encoding: the HTML part
// has "caf%C3%A9" where the text part has "café".
func linkKey(u string) string {
	if d, err := url.PathUnescape(u); err == nil {
		return d
	}
	return u
}

func missing(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func normSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

func htmlEscapeText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
