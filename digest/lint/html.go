package lint

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// link is an <a href> of the HTML part.
type link struct {
	href    string
	text    string
	visible bool
}

// htmlScan is what one walk of the HTML part gathers.
type htmlScan struct {
	lang        bool
	links       []link
	visibleText strings.Builder
	sawVisible  bool // visible text seen so far (the preheader comes first)
	preheader   *html.Node
	preStyle    map[string]string

	byRule map[string][]string // rule → offending items, reported once per rule
	sev    map[string]Severity
	order  []string
	pairs  map[string]bool // contrast pairs already reported
}

func (s *htmlScan) flag(rule string, sev Severity, item string) {
	if s.byRule == nil {
		s.byRule, s.sev = map[string][]string{}, map[string]Severity{}
	}
	key := rule + "\x00" + string(sev)
	if _, ok := s.byRule[key]; !ok {
		s.order = append(s.order, key)
	}
	for _, it := range s.byRule[key] {
		if it == item {
			return
		}
	}
	s.byRule[key] = append(s.byRule[key], item)
	s.sev[key] = sev
}

// walkState is inherited down the tree.
type walkState struct {
	color, bg  rgb
	hidden     bool // display:none, or hidden by size and overflow, or invisible
	inLink     bool
	linkColour bool // an explicit colour is set on or inside the link
}

func (c *checker) htmlPart(m *message) {
	if len(m.html) >= c.opt.MaxHTMLBytes {
		c.add("4.5 html-size", Error, "the decoded HTML is %d bytes, Gmail clips messages over about 100 KB (limit %d)", len(m.html), c.opt.MaxHTMLBytes)
	}
	doc, err := html.Parse(bytes.NewReader(m.html))
	if err != nil {
		c.add("4.6 script", Error, "the HTML part cannot be parsed: %v", err)
		return
	}
	s := &htmlScan{pairs: map[string]bool{}}
	c.walk(s, doc, walkState{color: rgb{0, 0, 0, true}, bg: rgb{255, 255, 255, true}})
	if !s.lang {
		c.add("4.6 lang", Warning, "<html> has no lang attribute: screen readers guess the language")
	}
	c.checkPreheader(s)
	for _, key := range s.order {
		rule := key[:strings.IndexByte(key, 0)]
		c.add(rule, s.sev[key], "%s", list(s.byRule[key]))
	}
	m.htmlScan = s
}

var bodyAtoms = map[atom.Atom]bool{atom.Title: true, atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true}

func (c *checker) walk(s *htmlScan, n *html.Node, st walkState) {
	switch n.Type {
	case html.TextNode:
		txt := strings.TrimSpace(n.Data)
		if txt == "" || strings.Trim(txt, "\u034f\u200c\u00a0\u200b\u2007\u00ad ") == "" {
			return
		}
		c.textNode(s, txt, st)
		return
	case html.ElementNode:
	default:
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			c.walk(s, ch, st)
		}
		return
	}

	tag := strings.ToLower(n.Data)
	attrs := map[string]string{}
	for _, a := range n.Attr {
		k := strings.ToLower(a.Key)
		attrs[k] = a.Val
		if strings.HasPrefix(k, "on") && len(k) > 2 {
			s.flag("4.7 event-handler", Error, fmt.Sprintf("<%s %s=…>", tag, k))
		}
	}
	style := parseStyle(attrs["style"])
	checkDecls(s, style, "<"+tag+" style>")

	switch n.DataAtom {
	case atom.Html:
		if strings.TrimSpace(attrs["lang"]) != "" {
			s.lang = true
		}
	case atom.Script:
		if t := strings.ToLower(attrs["type"]); t != "application/ld+json" && t != "application/json" {
			s.flag("4.6 script", Error, "<script>")
		}
		return
	case atom.Style:
		var css strings.Builder
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			css.WriteString(ch.Data)
		}
		c.styleBlock(s, css.String())
		return
	case atom.Form, atom.Input, atom.Button, atom.Select, atom.Textarea:
		s.flag("4.6 form", Error, "<"+tag+">")
	case atom.Iframe, atom.Object, atom.Embed, atom.Applet, atom.Frame, atom.Frameset:
		s.flag("4.6 embed", Error, "<"+tag+">")
	case atom.Img:
		c.img(s, attrs)
	}
	if n.DataAtom != atom.Html && n.DataAtom != atom.Body {
		for _, k := range []string{"width"} {
			if w, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(attrs[k]), "px")); err == nil && w > 600 {
				s.flag("4.6 fixed-width", Warning, fmt.Sprintf("<%s width=%q>", tag, attrs[k]))
			}
		}
		if w := style["width"]; strings.HasSuffix(w, "px") {
			if v, err := strconv.ParseFloat(strings.TrimSuffix(w, "px"), 64); err == nil && v > 600 {
				s.flag("4.6 fixed-width", Warning, fmt.Sprintf("<%s style=\"width:%s\">", tag, w))
			}
		}
	}

	// Colours and visibility, inherited.
	if col, ok := parseColor(style["color"]); ok {
		st.color = col
		if st.inLink {
			st.linkColour = true
		}
	} else if col, ok := parseColor(attrs["color"]); ok && n.DataAtom == atom.Font {
		st.color = col
		if st.inLink {
			st.linkColour = true
		}
	}
	if col, ok := backgroundColor(style); ok {
		st.bg = col
	} else if col, ok := parseColor(attrs["bgcolor"]); ok {
		st.bg = col
	}
	hiddenHere := hiddenBy(style) != ""
	if hiddenHere && !st.hidden && s.preheader == nil && !s.sawVisible && n.DataAtom != atom.Head && hasText(n) {
		s.preheader, s.preStyle = n, style
	}
	if hiddenHere || n.DataAtom == atom.Head {
		st.hidden = true
	}
	if bodyAtoms[n.DataAtom] {
		return
	}
	if n.DataAtom == atom.A {
		if href, ok := attrs["href"]; ok {
			c.anchor(s, href, textOf(n), st.hidden)
		}
		st.inLink = true
		st.linkColour = false
		if _, ok := parseColor(style["color"]); ok {
			st.linkColour = true
		}
	}
	for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
		c.walk(s, ch, st)
	}
	if n.DataAtom == atom.P || n.DataAtom == atom.Br || n.DataAtom == atom.Div || n.DataAtom == atom.Td || n.DataAtom == atom.Li {
		s.visibleText.WriteByte('\n')
	}
}

func (c *checker) textNode(s *htmlScan, txt string, st walkState) {
	if !st.hidden {
		s.sawVisible = true
		s.visibleText.WriteString(txt)
		s.visibleText.WriteByte(' ')
	}
	col := st.color
	if st.inLink && !st.linkColour {
		col = rgb{0, 0, 0xee, true} // clients' default link blue
	}
	ratio := contrast(col, st.bg)
	switch {
	case ratio < 1.5:
		key := col.String() + st.bg.String() + "e"
		if !s.pairs[key] {
			s.pairs[key] = true
			s.flag("4.6 low-contrast", Error, fmt.Sprintf("%q in %s on %s (contrast %.2f:1; SpamAssassin HTML_FONT_LOW_CONTRAST)", shorten(txt, 30), col, st.bg, ratio))
		}
	case ratio < 3 && !st.hidden:
		key := col.String() + st.bg.String() + "w"
		if !s.pairs[key] {
			s.pairs[key] = true
			s.flag("4.6 low-contrast", Warning, fmt.Sprintf("%q in %s on %s is hard to read (contrast %.2f:1, want 3:1 or more)", shorten(txt, 30), col, st.bg, ratio))
		}
	}
}

func (c *checker) img(s *htmlScan, attrs map[string]string) {
	src := attrs["src"]
	name := shorten(src, 60)
	if name == "" {
		name = "(no src)"
	}
	alt, ok := attrs["alt"]
	switch {
	case !ok:
		s.flag("4.6 img-alt", Error, "<img src=\""+name+"\"> has no alt")
	case strings.TrimSpace(alt) == "":
		s.flag("4.6 img-alt", Warning, "<img src=\""+name+"\"> has an empty alt (fine only for decoration)")
	}
	for _, k := range []string{"width", "height"} {
		v := strings.TrimSpace(attrs[k])
		if _, err := strconv.Atoi(v); err != nil {
			if v == "" {
				s.flag("4.6 img-size", Error, "<img src=\""+name+"\"> has no "+k+" attribute")
			} else {
				s.flag("4.6 img-size", Error, fmt.Sprintf("<img src=\"%s\"> %s=%q is not a number of pixels", name, k, v))
			}
		}
	}
	u, err := url.Parse(strings.TrimSpace(src))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		s.flag("4.6 img-src", Error, "<img src=\""+name+"\"> is not an absolute https URL")
	}
}

func (c *checker) anchor(s *htmlScan, href, text string, hidden bool) {
	h := strings.TrimSpace(href)
	s.links = append(s.links, link{href: h, text: text, visible: !hidden})
	u, err := url.Parse(h)
	if err != nil {
		s.flag("4.6 link-absolute", Error, fmt.Sprintf("href %q: %v", shorten(h, 60), err))
		return
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			s.flag("4.6 link-absolute", Error, fmt.Sprintf("href %q has no host", shorten(h, 60)))
		}
	case "http":
		if u.Host == "" {
			s.flag("4.6 link-absolute", Error, fmt.Sprintf("href %q has no host", shorten(h, 60)))
		} else {
			s.flag("4.6 link-https", Warning, shorten(h, 80))
		}
	case "mailto", "tel":
	case "javascript", "vbscript", "data":
		s.flag("4.7 event-handler", Error, fmt.Sprintf("href %q", shorten(h, 40)))
	case "":
		if h == "" {
			s.flag("4.6 link-absolute", Error, fmt.Sprintf("a link %q has an empty href", shorten(text, 40)))
		} else if !strings.HasPrefix(h, "#") {
			s.flag("4.6 link-absolute", Error, fmt.Sprintf("href %q is relative: it has no meaning in an email", shorten(h, 60)))
		}
	default:
		s.flag("4.6 link-absolute", Error, fmt.Sprintf("href %q: scheme %s", shorten(h, 60), u.Scheme))
	}
}

// hiddenBy says how an element's own style hides it, or "".
func hiddenBy(st map[string]string) string {
	zero := func(v string) bool {
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "!important"))
		return v == "0" || v == "0px" || v == "0pt" || v == "0em" || v == "0%"
	}
	tiny := func(v string) bool {
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "!important"))
		return zero(v) || v == "1px" || v == "1pt"
	}
	switch {
	case strings.HasPrefix(st["display"], "none"):
		return "display"
	case strings.HasPrefix(st["visibility"], "hidden"):
		return "visibility"
	case zero(st["opacity"]):
		return "opacity"
	case strings.HasPrefix(st["overflow"], "hidden") && (zero(st["max-height"]) || zero(st["height"]) || tiny(st["font-size"])):
		return "size"
	case strings.HasPrefix(st["mso-hide"], "all") && (zero(st["max-height"]) || zero(st["height"])):
		return "size"
	}
	return ""
}

// sizeHidden says whether a style hides by size and overflow, the way
// that needs no colour trick: overflow:hidden with a zero height or a
// font of at most 1px.
func sizeHidden(st map[string]string) bool {
	z := func(v string) bool {
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "!important"))
		return v == "0" || v == "0px" || v == "0pt"
	}
	t := func(v string) bool {
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "!important"))
		return z(v) || v == "1px" || v == "1pt"
	}
	return strings.HasPrefix(st["overflow"], "hidden") && (z(st["max-height"]) || z(st["height"]) || t(st["font-size"]))
}

func (c *checker) checkPreheader(s *htmlScan) {
	if s.preheader == nil {
		c.add("4.6 preheader", Warning, "no hidden preheader before the visible text: clients show the first words of the body in the inbox")
		return
	}
	if !sizeHidden(s.preStyle) {
		c.add("4.6 preheader", Warning, "the preheader %q is hidden by %s only; hide it by size and overflow too (font-size:1px; max-height:0; overflow:hidden; mso-hide:all) so that every client hides it",
			shorten(textOf(s.preheader), 40), hiddenBy(s.preStyle))
	}
	if fs := strings.TrimSpace(strings.TrimSuffix(s.preStyle["font-size"], "!important")); fs == "0" || fs == "0px" || fs == "1px" || fs == "0pt" || fs == "1pt" {
		c.add("4.6 preheader", Warning, "the preheader uses font-size:%s: SpamAssassin's FONT_INVIS_MSGID counts tiny text as invisible (+1.0); hide it with max-height:0 and overflow:hidden instead", fs)
	}
}

func hasText(n *html.Node) bool {
	return strings.Trim(textOf(n), "\u034f\u200c\u00a0\u200b\u2007\u00ad \n\t") != ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		if n.Type == html.ElementNode && (n.DataAtom == atom.Script || n.DataAtom == atom.Style) {
			return
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			f(ch)
		}
	}
	f(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// parseStyle reads a style attribute into lower-case properties; the last
// declaration of a property wins.
func parseStyle(s string) map[string]string {
	out := map[string]string{}
	for _, d := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(d, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.ToLower(strings.TrimSpace(v))
		if k != "" {
			out[k] = v
		}
	}
	return out
}

// checkDecls applies the forbidden-CSS rules to declarations.
func checkDecls(s *htmlScan, decls map[string]string, where string) {
	for k, v := range decls {
		val := strings.TrimSpace(strings.TrimSuffix(v, "!important"))
		switch {
		case k == "display" && (val == "flex" || val == "inline-flex"),
			k == "flex" || strings.HasPrefix(k, "flex-"):
			s.flag("4.6 css-flex", Error, fmt.Sprintf("%s %s:%s", where, k, val))
		case k == "display" && (val == "grid" || val == "inline-grid"),
			k == "grid" || strings.HasPrefix(k, "grid-"):
			s.flag("4.6 css-grid", Error, fmt.Sprintf("%s %s:%s", where, k, val))
		case k == "position" && val != "static":
			s.flag("4.6 css-position", Error, fmt.Sprintf("%s position:%s", where, val))
		}
		if strings.HasPrefix(k, "--") || strings.Contains(val, "var(") {
			s.flag("4.6 css-variables", Error, fmt.Sprintf("%s %s:%s", where, k, shorten(val, 30)))
		}
	}
}

var (
	cssComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	cssDecl    = regexp.MustCompile(`([-a-zA-Z]+)\s*:\s*([^;{}]+)`)
)

// styleBlock checks a <style> element: forbidden CSS anywhere, and rules
// outside @media that only work if the client keeps <style>.
func (c *checker) styleBlock(s *htmlScan, css string) {
	css = cssComment.ReplaceAllString(css, "")
	// Forbidden CSS, inside and outside media queries.
	for _, body := range blockBodies(css) {
		decls := map[string]string{}
		for _, m := range cssDecl.FindAllStringSubmatch(body, -1) {
			decls[strings.ToLower(m[1])] = strings.ToLower(strings.TrimSpace(m[2]))
		}
		checkDecls(s, decls, "<style>")
	}
	// What remains once at-rules are cut out must be empty.
	var sel []string
	rest := css
	for {
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		head := strings.TrimSpace(rest[:open])
		end := matchBrace(rest, open)
		if !strings.HasPrefix(head, "@") && head != ":root" {
			sel = append(sel, shorten(head, 40))
		}
		if end < 0 {
			break
		}
		rest = rest[end+1:]
	}
	if len(sel) > 0 {
		s.flag("4.6 style-only", Warning, fmt.Sprintf("<style> rules outside @media apply only where <style> survives (inline them): %s", list(sel)))
	}
}

// blockBodies returns the innermost {…} bodies of css.
func blockBodies(css string) []string {
	var out []string
	var stack []int
	for i := 0; i < len(css); i++ {
		switch css[i] {
		case '{':
			stack = append(stack, i)
		case '}':
			if len(stack) > 0 {
				open := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				body := css[open+1 : i]
				if !strings.ContainsAny(body, "{}") {
					out = append(out, body)
				}
			}
		}
	}
	return out
}

func matchBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}
