// Package render turns an edition into the HTML and plain-text parts of a
// digest email.
//
// Rendering is split in two so that the expensive work happens once per
// edition variant, not once per recipient: Renderer.Prepare executes the
// subject, HTML and text templates once, inlines the CSS with go-premailer
// once, and compiles the result into literal segments with per-recipient
// slots (name, email, greeting, unsubscribe and preferences links).
// Prepared.Personalize then fills the slots for each recipient with no
// template execution and no CSS inlining: a few appends of escaped values.
// Prepared.Segments and Prepared.Values give the same two halves apart
// (the fixed segments, and one recipient's escaped values), for a message
// template that encodes the segments once (mailer.Template).
//
// Templates see a Data value. Per-recipient fields (Data.Recipient) render
// at Prepare time as opaque markers made of upper-case letters and digits,
// which neither html/template, premailer nor HTML serialisation alter; the
// markers are then cut out of the output and replaced by slots. Templates
// therefore cannot branch on recipient values: the greeting is a slot
// ("Hi NAME," or "Hello,") and an optional preferences link is wrapped in
// Recipient.PreferencesBegin / Recipient.PreferencesEnd, a region that
// Personalize drops when the recipient has no preferences URL.
package render

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	texttemplate "text/template"
	"time"

	"github.com/microcosm-cc/bluemonday"
	"github.com/vanng822/go-premailer/premailer"
	"golang.org/x/net/html"

	"newsdigest/digest"
	"newsdigest/subscribers"
	"newsdigest/templates"
)

// Template file names, looked up in templates.FS under "email/" and in the
// override directory.
const (
	FileHTML    = "digest.html.tmpl"
	FileText    = "digest.txt.tmpl"
	FileSubject = "subject.txt.tmpl"
	FileCSS     = "style.css"
)

// Defaults for a Brand's empty fields.
const (
	DefaultLang        = "en"
	DefaultAccentColor = "#0b5cad"
	DefaultLinkColor   = "#0b5cad"
)

// Brand is the site's identity as shown in every digest.
type Brand struct {
	SiteName      string // header text, e.g. "Harbour Gazette"
	SiteURL       string // http(s) link of the header; optional
	LogoURL       string // absolute https URL of a square icon shown 40×40 in the header; optional
	PostalAddress string // the sender's postal address, shown in the footer; lines separated by "\n"
	Footer        string // free footer text; optional
	Lang          string // BCP 47 language of the templates; default "en"
	AccentColor   string // "#rgb" or "#rrggbb" for buttons; default "#0b5cad"
	LinkColor     string // "#rgb" or "#rrggbb" for text links; default "#0b5cad"
}

// ButtonTextColor is the colour of text on the accent colour: white, or
// near-black when the accent is too light for white text to be read.
func (b Brand) ButtonTextColor() string {
	c := b.AccentColor
	if !accentRe.MatchString(c) {
		c = DefaultAccentColor
	}
	if relLuminance(c) > 0.18 { // contrast with white under 4.5:1
		return "#18181b"
	}
	return "#ffffff"
}

// relLuminance is the WCAG relative luminance of "#rgb" or "#rrggbb".
func relLuminance(hex string) float64 {
	h := hex[1:]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	v, _ := strconv.ParseUint(h, 16, 32)
	ch := func(x uint64) float64 {
		f := float64(x) / 255
		if f <= 0.03928 {
			return f / 12.92
		}
		return math.Pow((f+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(v>>16&0xff) + 0.7152*ch(v>>8&0xff) + 0.0722*ch(v&0xff)
}

// View is everything shared by all recipients of one edition variant.
type View struct {
	List    subscribers.List
	Edition digest.Edition // Stories, Intro, and Subject (which, if non-empty, overrides the subject template)
	Brand   Brand
	ViewURL string // "view in browser" URL; optional
	// LinkFor, if set, rewrites each story's own link (e.g. into a
	// click-tracking redirect); it gets the article's ID and its http(s)
	// link and must return an absolute http(s) URL, else the original
	// link is kept. Links inside summaries are left as they are.
	LinkFor func(articleID, link string) string
}

// Recipient holds the per-recipient values filled in by Personalize.
type Recipient struct {
	Name           string
	Email          string
	UnsubscribeURL string // http(s); anything else renders as empty
	PreferencesURL string // http(s); empty drops the preferences link
}

// Data is what the templates see. Override templates may use any of it.
type Data struct {
	List    subscribers.List
	Edition digest.Edition
	Brand   Brand  // with defaults applied
	ViewURL string // validated http(s) URL or empty

	Title           string   // the list's title, or its name
	Subject         string   // the subject line (empty while the subject template runs)
	DateText        string   // the edition's date, e.g. "Friday, 27 November 2026"; empty if unknown
	Preheader       string   // preview text shown by clients after the subject
	IntroParagraphs []string // the editor's intro split at blank lines
	AddressLines    []string // Brand.PostalAddress split into lines
	Top             []Story  // "top" picks
	Recent          []Story  // "recent" picks
	Stories         []Story  // Top then Recent
	CSS             htmltemplate.CSS

	// Recipient renders per-recipient slots; see the package doc.
	Recipient RecipientSlots
}

// RecipientSlots are the per-recipient fields available to templates.
// Each renders as a marker that Personalize replaces.
type RecipientSlots struct {
	Name             string // the recipient's name, possibly empty
	Email            string // the recipient's address
	Greeting         string // "Hi NAME," or "Hello," when the name is empty
	UnsubscribeURL   string
	PreferencesURL   string
	PreferencesBegin string // start of a region dropped when PreferencesURL is empty
	PreferencesEnd   string // end of that region
}

// Story is one pick as the templates see it. Every field is safe to
// print: URLs are absolute http(s) (ImageURL https) or empty, SummaryHTML
// has been sanitized again for email.
type Story struct {
	Title       string
	Link        string
	ImageURL    string
	ImageAlt    string
	SummaryHTML htmltemplate.HTML
	SummaryText string
	Short       string   // SummaryText cut to about 200 characters
	Links       []string // http(s) links inside SummaryHTML other than Link, for the text part
	Meta        string   // author and categories, e.g. "By Ann Lee · Harbour, Weather"
	Author      string
	Categories  []string
	Published   time.Time
	Section     string // digest.SectionTop or digest.SectionRecent
	ArticleID   string
}

// Renderer holds parsed templates. It is safe for concurrent use.
type Renderer struct {
	html    *htmltemplate.Template
	text    *texttemplate.Template
	subject *texttemplate.Template
	css     htmltemplate.CSS
	policy  *bluemonday.Policy
	inlines atomic.Int64
}

var funcs = map[string]any{
	"wrap":      wrap,
	"indent":    indent,
	"truncate":  truncate,
	"trimSpace": strings.TrimSpace,
	"inc":       func(i int) int { return i + 1 },
	"upper":     strings.ToUpper,
	// mso wraps markup in an Outlook-only conditional comment
	// (html/template drops comments written in a template). Only for
	// literal markup written in the template itself.
	"mso": func(markup string) htmltemplate.HTML {
		return htmltemplate.HTML("<!--[if mso]>" + markup + "<![endif]-->")
	},
}

// New parses the email templates embedded in templates.FS ("email/*"). A
// file of the same name in overrideDir, if overrideDir is not empty,
// replaces the embedded one. Errors name the file.
func New(overrideDir string) (*Renderer, error) {
	if overrideDir != "" {
		st, err := os.Stat(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("render: template directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("render: template directory %s: not a directory", overrideDir)
		}
	}
	load := func(name string) (src, where string, err error) {
		if overrideDir != "" {
			p := filepath.Join(overrideDir, name)
			b, err := os.ReadFile(p)
			if err == nil {
				return string(b), p, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", p, fmt.Errorf("render: %w", err)
			}
		}
		b, err := templates.FS.ReadFile("email/" + name)
		if err != nil {
			return "", "email/" + name, fmt.Errorf("render: embedded template email/%s: %w", name, err)
		}
		return string(b), "templates/email/" + name, nil
	}

	r := &Renderer{policy: emailPolicy()}
	src, where, err := load(FileHTML)
	if err != nil {
		return nil, err
	}
	if r.html, err = htmltemplate.New(FileHTML).Funcs(funcs).Parse(src); err != nil {
		return nil, fmt.Errorf("render: parse %s: %w", where, err)
	}
	if src, where, err = load(FileText); err != nil {
		return nil, err
	}
	if r.text, err = texttemplate.New(FileText).Funcs(funcs).Parse(src); err != nil {
		return nil, fmt.Errorf("render: parse %s: %w", where, err)
	}
	if src, where, err = load(FileSubject); err != nil {
		return nil, err
	}
	if r.subject, err = texttemplate.New(FileSubject).Funcs(funcs).Parse(src); err != nil {
		return nil, fmt.Errorf("render: parse %s: %w", where, err)
	}
	if src, where, err = load(FileCSS); err != nil {
		return nil, err
	}
	if strings.Contains(src, "</") {
		return nil, fmt.Errorf("render: %s: must not contain \"</\"", where)
	}
	r.css = htmltemplate.CSS(src)
	return r, nil
}

// Inlines reports how many times premailer has run on this Renderer: once
// per Prepare, never per recipient.
func (r *Renderer) Inlines() int64 { return r.inlines.Load() }

var accentRe = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
var langRe = regexp.MustCompile(`^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$`)

// Prepare renders v once: subject, HTML (with CSS inlined by premailer) and
// text, compiled into segments with per-recipient slots.
func (r *Renderer) Prepare(v View) (*Prepared, error) {
	d, err := r.data(v)
	if err != nil {
		return nil, err
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	d.Recipient = markers(nonce)

	// Subject: the edition's own, or the template's; one line, no slots.
	subject := v.Edition.Subject
	if subject == "" {
		var b strings.Builder
		if err := r.subject.Execute(&b, d); err != nil {
			return nil, fmt.Errorf("render: execute %s: %w", FileSubject, err)
		}
		subject = b.String()
	}
	subject = oneLine(subject)
	if strings.Contains(subject, markerPrefix+nonce) {
		return nil, fmt.Errorf("render: %s: the subject must not use per-recipient fields", FileSubject)
	}
	if subject == "" {
		return nil, errors.New("render: the subject is empty")
	}
	d.Subject = subject

	var hb bytes.Buffer
	if err := r.html.Execute(&hb, d); err != nil {
		return nil, fmt.Errorf("render: execute %s: %w", FileHTML, err)
	}
	pm, err := premailer.NewPremailerFromString(hb.String(), premailer.NewOptions())
	if err != nil {
		return nil, fmt.Errorf("render: premailer: %w", err)
	}
	r.inlines.Add(1)
	inlined, err := pm.Transform()
	if err != nil {
		return nil, fmt.Errorf("render: premailer: %w", err)
	}

	var tb bytes.Buffer
	if err := r.text.Execute(&tb, d); err != nil {
		return nil, fmt.Errorf("render: execute %s: %w", FileText, err)
	}

	p := &Prepared{Subject: subject}
	if p.html, err = compile(inlined, nonce); err != nil {
		return nil, fmt.Errorf("render: %s: %w", FileHTML, err)
	}
	if p.text, err = compile(tidyText(tb.String()), nonce); err != nil {
		return nil, fmt.Errorf("render: %s: %w", FileText, err)
	}
	return p, nil
}

// RenderPreviewHTML renders the HTML of v as rc would receive it, for
// previews written to a file or served to an editor.
func (r *Renderer) RenderPreviewHTML(v View, rc Recipient) ([]byte, error) {
	p, err := r.Prepare(v)
	if err != nil {
		return nil, err
	}
	html, _ := p.Personalize(rc)
	return html, nil
}

// data builds the template data shared by all recipients, validating the
// view's URLs and colours.
func (r *Renderer) data(v View) (Data, error) {
	b := v.Brand
	if b.Lang == "" {
		b.Lang = DefaultLang
	}
	if !langRe.MatchString(b.Lang) {
		return Data{}, fmt.Errorf("render: brand lang %q: want a language tag such as \"en\" or \"pt-BR\"", b.Lang)
	}
	if b.AccentColor == "" {
		b.AccentColor = DefaultAccentColor
	}
	if !accentRe.MatchString(b.AccentColor) {
		return Data{}, fmt.Errorf("render: brand accent color %q: want #rgb or #rrggbb", b.AccentColor)
	}
	if b.LinkColor == "" {
		b.LinkColor = DefaultLinkColor
	}
	if !accentRe.MatchString(b.LinkColor) {
		return Data{}, fmt.Errorf("render: brand link color %q: want #rgb or #rrggbb", b.LinkColor)
	}
	if b.SiteURL != "" && !isHTTPURL(b.SiteURL) {
		return Data{}, fmt.Errorf("render: brand site URL %q: want an absolute http(s) URL", b.SiteURL)
	}
	if b.LogoURL != "" && !isHTTPSURL(b.LogoURL) {
		return Data{}, fmt.Errorf("render: brand logo URL %q: want an absolute https URL", b.LogoURL)
	}
	if v.ViewURL != "" && !isHTTPURL(v.ViewURL) {
		return Data{}, fmt.Errorf("render: view URL %q: want an absolute http(s) URL", v.ViewURL)
	}
	b.SiteName = oneLine(b.SiteName)
	if b.SiteName == "" {
		b.SiteName = oneLine(v.List.Title)
	}

	d := Data{
		List:    v.List,
		Edition: v.Edition,
		Brand:   b,
		ViewURL: v.ViewURL,
		Title:   oneLine(v.List.Title),
		CSS:     r.css,
	}
	if d.Title == "" {
		d.Title = v.List.Name
	}
	if !v.Edition.Slot.IsZero() {
		d.DateText = v.Edition.Slot.Format("Monday, 2 January 2006")
	}
	d.IntroParagraphs = paragraphs(v.Edition.Intro)
	for _, l := range strings.Split(b.PostalAddress, "\n") {
		if l = oneLine(l); l != "" {
			d.AddressLines = append(d.AddressLines, l)
		}
	}
	for _, p := range v.Edition.Stories.Top {
		d.Top = append(d.Top, r.story(p, digest.SectionTop))
	}
	for _, p := range v.Edition.Stories.Recent {
		d.Recent = append(d.Recent, r.story(p, digest.SectionRecent))
	}
	if v.LinkFor != nil {
		for _, ss := range [][]Story{d.Top, d.Recent} {
			for i := range ss {
				if l := ss[i].Link; l != "" {
					if t := v.LinkFor(ss[i].ArticleID, l); isHTTPURL(t) {
						ss[i].Link = t
					}
				}
			}
		}
	}
	d.Stories = append(append([]Story(nil), d.Top...), d.Recent...)

	switch {
	case len(d.IntroParagraphs) > 0:
		d.Preheader = truncate(strings.Join(d.IntroParagraphs, " "), 140)
	case len(d.Stories) > 0:
		s := d.Stories[0]
		d.Preheader = s.Title
		if s.SummaryText != "" {
			d.Preheader += " — " + s.SummaryText
		}
		d.Preheader = truncate(d.Preheader, 140)
	}
	return d, nil
}

// maxSummaryHTML bounds a story's summary HTML so that ten stories stay
// well under Gmail's clipping size; longer summaries use the text, cut.
const maxSummaryHTML = 2000

func (r *Renderer) story(p digest.Pick, section string) Story {
	a := p.Article
	s := Story{
		Title:      oneLine(a.Title),
		Author:     oneLine(a.Author),
		Categories: a.Categories,
		Published:  a.Published,
		Section:    section,
		ArticleID:  a.ID,
	}
	if s.Title == "" {
		s.Title = "(untitled)"
	}
	if isHTTPURL(a.Link) {
		s.Link = a.Link
	}
	if isHTTPSURL(a.ImageURL) {
		s.ImageURL = a.ImageURL
		s.ImageAlt = s.Title
	}
	s.SummaryText = oneLine(a.SummaryText)
	if a.SummaryHTML != "" {
		clean := strings.TrimSpace(r.policy.Sanitize(a.SummaryHTML))
		if s.SummaryText == "" {
			s.SummaryText = oneLine(bluemonday.StrictPolicy().Sanitize(a.SummaryHTML))
			s.SummaryText = htmlUnescape(s.SummaryText)
		}
		if len(clean) > maxSummaryHTML {
			clean = htmltemplate.HTMLEscapeString(truncate(s.SummaryText, 600))
		}
		s.SummaryHTML = htmltemplate.HTML(clean)
		s.Links = summaryLinks(string(s.SummaryHTML), s.Link)
	} else if s.SummaryText != "" {
		s.SummaryHTML = htmltemplate.HTML(htmltemplate.HTMLEscapeString(truncate(s.SummaryText, 600)))
	}
	s.Short = truncate(s.SummaryText, 200)
	var meta []string
	if s.Author != "" {
		meta = append(meta, "By "+s.Author)
	}
	var cats []string
	for _, c := range a.Categories {
		if c = oneLine(c); c != "" {
			cats = append(cats, c)
		}
	}
	if len(cats) > 0 {
		meta = append(meta, strings.Join(cats, ", "))
	}
	s.Meta = strings.Join(meta, " · ")
	return s
}

// summaryLinks lists the distinct http(s) hrefs of sanitized summary HTML,
// leaving out the story's own link, so that the text part can show the same
// links as the HTML part.
func summaryLinks(h, own string) []string {
	var out []string
	seen := map[string]bool{own: true}
	z := html.NewTokenizer(strings.NewReader(h))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.StartTagToken:
			name, hasAttr := z.TagName()
			if string(name) != "a" {
				continue
			}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if href := string(v); string(k) == "href" && isHTTPURL(href) && !seen[href] {
					seen[href] = true
					out = append(out, href)
				}
			}
		}
	}
}

// emailPolicy is the HTML allowed in a summary inside an email: text
// formatting and http(s)/mailto links. Images are dropped (a story's image
// is shown from Article.ImageURL with the sizes email clients need), as are
// styles, classes, tables and anything active.
func emailPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "b", "strong", "i", "em", "u", "s", "small", "sub", "sup",
		"ul", "ol", "li", "blockquote", "q", "cite", "code", "pre", "abbr")
	p.AllowAttrs("href").OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto")
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(false)
	return p
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		!strings.ContainsFunc(s, isSpaceOrControl)
}

func isHTTPSURL(s string) bool {
	return isHTTPURL(s) && strings.HasPrefix(strings.ToLower(s), "https:")
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
