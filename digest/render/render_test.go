package render

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"newsdigest/digest"
)

func newRenderer(t *testing.T, dir string) *Renderer {
	t.Helper()
	r, err := New(dir)
	if err != nil {
		t.Fatalf("New(%q): %v", dir, err)
	}
	return r
}

func prepare(t *testing.T, r *Renderer, v View) *Prepared {
	t.Helper()
	p, err := r.Prepare(v)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return p
}

var fullRecipient = Recipient{
	Name:           "Ann",
	Email:          "ann@example.org",
	UnsubscribeURL: "https://news.example/unsubscribe/TOKEN-U?x=1&y=2",
	PreferencesURL: "https://news.example/preferences/TOKEN-P",
}

// TestSlotsSurvivePremailer uses an override template that puts slots in
// attribute and text positions, next to CSS that premailer must inline.
func TestSlotsSurvivePremailer(t *testing.T) {
	dir := t.TempDir()
	tmpl := `<!DOCTYPE html><html lang="en"><head><style>a { color: #0b5cad; } p { margin: 0; }</style></head><body>
<p title="{{.Recipient.Name}}">{{.Recipient.Greeting}} {{.Recipient.Name}} / {{.Recipient.Email}}</p>
<a href="{{.Recipient.UnsubscribeURL}}">unsubscribe</a>
{{.Recipient.PreferencesBegin}}<a href="{{.Recipient.PreferencesURL}}">prefs</a>{{.Recipient.PreferencesEnd}}
</body></html>`
	if err := os.WriteFile(filepath.Join(dir, FileHTML), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRenderer(t, dir)
	p := prepare(t, r, testView(1, 0))

	t.Run("OK", func(t *testing.T) {
		h, _ := p.Personalize(fullRecipient)
		got := string(h)
		for _, want := range []string{
			`<a href="https://news.example/unsubscribe/TOKEN-U?x=1&amp;y=2" style="color:#0b5cad">unsubscribe</a>`,
			`<a href="https://news.example/preferences/TOKEN-P" style="color:#0b5cad">prefs</a>`,
			`<p title="Ann" style="margin:0">Hi Ann, Ann / ann@example.org</p>`,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("HTML lacks %s\n%s", want, got)
			}
		}
		if strings.Contains(got, markerPrefix) {
			t.Errorf("a marker is left in the HTML:\n%s", got)
		}
	})
	t.Run("HostileName", func(t *testing.T) {
		for _, name := range []string{`<script>alert(1)</script>`, `"><img onerror=x>`, "a\r\nBcc: x@evil.example"} {
			h, txt := p.Personalize(Recipient{Name: name, Email: "b@example.org", UnsubscribeURL: "https://news.example/u/1"})
			got := string(h)
			if strings.Contains(got, "<script") || strings.Contains(got, "<img") || strings.Contains(got, `"><img`) {
				t.Errorf("name %q reached the HTML unescaped:\n%s", name, got)
			}
			esc := html.EscapeString(cleanValue(name))
			if !strings.Contains(got, `title="`+esc+`"`) || !strings.Contains(got, "Hi "+esc+",") {
				t.Errorf("name %q: want escaped %q in attribute and text:\n%s", name, esc, got)
			}
			if strings.ContainsAny(string(txt), "\r") || strings.Contains(string(txt), "\nBcc:") {
				t.Errorf("name %q: control characters reached the text part", name)
			}
		}
	})
	t.Run("NoName", func(t *testing.T) {
		h, txt := p.Personalize(Recipient{Email: "c@example.org"})
		if !strings.Contains(string(h), ">Hello,  / c@example.org<") {
			t.Errorf("HTML greeting without a name:\n%s", h)
		}
		if !strings.Contains(string(txt), "Hello,") {
			t.Errorf("text greeting without a name:\n%s", txt)
		}
	})
	t.Run("UnsafeURLs", func(t *testing.T) {
		h, txt := p.Personalize(Recipient{Email: "d@example.org", UnsubscribeURL: "javascript:alert(1)", PreferencesURL: "ftp://x.example/"})
		if strings.Contains(string(h), "javascript") || strings.Contains(string(txt), "javascript") {
			t.Errorf("javascript: URL was kept:\n%s", h)
		}
		if !strings.Contains(string(h), `<a href="" style="color:#0b5cad">unsubscribe</a>`) {
			t.Errorf("unsafe unsubscribe URL: want an empty href:\n%s", h)
		}
		if strings.Contains(string(h), "prefs") || strings.Contains(string(h), "ftp:") {
			t.Errorf("the preferences region should be dropped:\n%s", h)
		}
	})
}

func TestDefaultTemplate(t *testing.T) {
	r := newRenderer(t, "")
	v := testView(5, 5)
	p := prepare(t, r, v)
	h, txt := p.Personalize(fullRecipient)
	hs, ts := string(h), string(txt)

	t.Run("Subject", func(t *testing.T) {
		got, want := p.Subject, `The Daily: Story 00: harbour council & the "new" ferry`
		if got != want {
			t.Errorf("Subject = %q, want %q", got, want)
		}
	})
	t.Run("CSSInlined", func(t *testing.T) {
		for _, re := range []string{
			`<table role="presentation" class="container"[^>]* style="[^"]*max-width:600px;[^"]*width:100%"`,
			`<!--\[if mso\]><table role="presentation" width="600"`,
			`<td class="story" style="padding:12px 24px 20px 24px;`,
			`<a class="button-link" href="[^"]+" style="display:inline-block;padding:10px 18px;`,
			`<body class="body" style="margin:0;padding:0;`,
		} {
			if !regexp.MustCompile(re).MatchString(hs) {
				t.Errorf("HTML does not match %s", re)
			}
		}
		// Only the media query stays in <style>.
		if n := strings.Count(hs, "<style"); n != 1 || !strings.Contains(hs, "@media only screen and (max-width: 620px)") || !strings.Contains(hs, "@media (prefers-color-scheme: dark)") {
			t.Errorf("want one <style> with the media queries, got %d", n)
		}
		if !strings.Contains(hs, `<a class="footer-link" href="https://news.example/unsubscribe/TOKEN-U?x=1&amp;y=2" style="color:#0b5cad">Unsubscribe</a>`) {
			t.Errorf("footer link colour not inlined")
		}
	})
	t.Run("StoriesInBothParts", func(t *testing.T) {
		for _, pk := range v.Edition.Stories.Picks() {
			a := pk.Article
			if !strings.Contains(ts, a.Title) || !strings.Contains(ts, a.Link) {
				t.Errorf("text part lacks %q or %q", a.Title, a.Link)
			}
			if !strings.Contains(hs, html.EscapeString(a.Title)) || !strings.Contains(hs, `href="`+html.EscapeString(a.Link)+`"`) {
				t.Errorf("HTML part lacks %q or %q", a.Title, a.Link)
			}
		}
	})
	t.Run("Footer", func(t *testing.T) {
		for _, want := range []string{"Unsubscribe: " + fullRecipient.UnsubscribeURL, "1 Quay Street", "View in browser: " + v.ViewURL, "Manage preferences: " + fullRecipient.PreferencesURL} {
			if !strings.Contains(ts, want) {
				t.Errorf("text part lacks %q", want)
			}
		}
		for _, want := range []string{`href="` + html.EscapeString(fullRecipient.UnsubscribeURL) + `"`, ">Unsubscribe</a>", "1 Quay Street", `href="` + v.ViewURL + `"`} {
			if !strings.Contains(hs, want) {
				t.Errorf("HTML part lacks %q", want)
			}
		}
	})
	t.Run("Preheader", func(t *testing.T) {
		if !regexp.MustCompile(`<div style="display:none;max-height:0;max-width:0;overflow:hidden;mso-hide:all;opacity:0;">Good morning\. A calm day`).MatchString(hs) {
			t.Errorf("no hidden preheader with the intro")
		}
	})
	t.Run("NoMarkers", func(t *testing.T) {
		if strings.Contains(hs, markerPrefix) || strings.Contains(ts, markerPrefix) {
			t.Errorf("marker left in output")
		}
	})
}

func TestPremailerRunsOncePerPrepare(t *testing.T) {
	r := newRenderer(t, "")
	p := prepare(t, r, testView(5, 5))
	var total int
	for i := range 1000 {
		h, txt := p.Personalize(Recipient{Name: fmt.Sprint("Reader ", i), Email: fmt.Sprintf("r%d@example.org", i), UnsubscribeURL: fmt.Sprintf("https://news.example/unsubscribe/%d", i)})
		total += len(h) + len(txt)
		if i == 999 && !bytes.Contains(h, []byte("Hi Reader 999,")) {
			t.Fatalf("recipient 999 not personalized")
		}
	}
	if got, want := r.Inlines(), int64(1); got != want {
		t.Errorf("Inlines() = %d after 1 Prepare and 1000 Personalize, want %d", got, want)
	}
	prepare(t, r, testView(2, 0))
	if got, want := r.Inlines(), int64(2); got != want {
		t.Errorf("Inlines() = %d after 2 Prepare, want %d", got, want)
	}
}

// hostileView has ten stories with long, hostile summaries.
func hostileView() View {
	v := testView(5, 5)
	long := strings.Repeat("The harbour master said the new ferry would run twice an hour from spring. ", 6)
	for _, sec := range []*[]digest.Pick{&v.Edition.Stories.Top, &v.Edition.Stories.Recent} {
		for i := range *sec {
			a := &(*sec)[i].Article
			a.Title = "Ferry <script>alert(1)</script>\r\nBcc: x@evil.example " + a.ID
			a.SummaryHTML = `<div style="display:flex;position:absolute;color:var(--x)"><p onclick="x()">` + long +
				`</p><form action="https://evil.example"><input name="q"></form><img src="https://x.example/a.png"><a href="javascript:alert(1)">x</a><iframe src="https://evil.example"></iframe><style>p{display:grid}</style></div>`
			a.SummaryText = long
		}
	}
	return v
}

func TestEmailRules(t *testing.T) {
	r := newRenderer(t, "")
	p := prepare(t, r, hostileView())
	h, _ := p.Personalize(fullRecipient)
	hs := strings.ToLower(string(h))

	t.Run("Size", func(t *testing.T) {
		if got := p.HTMLSize(); got >= 100_000 {
			t.Errorf("HTMLSize() = %d for 10 stories, want < 100000", got)
		}
		if got := len(h); got >= 100_000 {
			t.Errorf("personalized HTML is %d bytes, want < 100000", got)
		}
	})
	t.Run("Forbidden", func(t *testing.T) {
		for _, bad := range []string{"<script", "<form", "<input", "<iframe", "display:flex", "display:grid", "position:", "var(--", "javascript:", "onclick"} {
			if strings.Contains(hs, bad) {
				i := strings.Index(hs, bad)
				t.Errorf("output contains %q: …%s…", bad, hs[max(0, i-80):min(len(hs), i+80)])
			}
		}
	})
	t.Run("Subject", func(t *testing.T) {
		if strings.ContainsAny(p.Subject, "\r\n") {
			t.Errorf("Subject %q holds CR or LF", p.Subject)
		}
	})
	t.Run("Images", func(t *testing.T) {
		checkImages(t, h)
	})
}

// checkImages parses the HTML and checks every <img>.
func checkImages(t *testing.T, doc []byte) {
	t.Helper()
	z := html.NewTokenizer(bytes.NewReader(doc))
	n := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		if tok.Data != "img" {
			continue
		}
		n++
		attrs := map[string]string{}
		for _, a := range tok.Attr {
			attrs[a.Key] = a.Val
		}
		if attrs["alt"] == "" {
			t.Errorf("img without alt: %v", tok)
		}
		for _, k := range []string{"width", "height"} {
			if v, err := strconv.Atoi(attrs[k]); err != nil || v <= 0 {
				t.Errorf("img %s = %q, want a positive number: %v", k, attrs[k], tok)
			}
		}
		if !strings.HasPrefix(attrs["src"], "https://") {
			t.Errorf("img src %q is not absolute https", attrs["src"])
		}
	}
	if n == 0 {
		t.Errorf("no <img> found: the check checked nothing")
	}
}

func TestOverrideDir(t *testing.T) {
	t.Run("ReplacesOneTemplate", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileSubject), []byte("Morning news from {{.Brand.SiteName}}"), 0o644); err != nil {
			t.Fatal(err)
		}
		p := prepare(t, newRenderer(t, dir), testView(2, 1))
		if got, want := p.Subject, "Morning news from Harbour Gazette"; got != want {
			t.Errorf("Subject = %q, want %q", got, want)
		}
		// The embedded HTML is still used.
		if h, _ := p.Personalize(fullRecipient); !bytes.Contains(h, []byte("Top stories")) {
			t.Errorf("embedded HTML template not used")
		}
	})
	t.Run("ParseErrorNamesFile", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, FileText)
		if err := os.WriteFile(path, []byte("{{.Title"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := New(dir)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("New with a broken %s: err = %v, want it to name %s", FileText, err, path)
		}
	})
	t.Run("MissingDir", func(t *testing.T) {
		if _, err := New(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Errorf("New with a missing directory: want an error")
		}
	})
	t.Run("SubjectWithRecipientRefused", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileSubject), []byte("For {{.Recipient.Name}}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := newRenderer(t, dir).Prepare(testView(1, 0)); err == nil {
			t.Errorf("a subject using a recipient field: want an error")
		}
	})
}

func TestPrepareValidation(t *testing.T) {
	r := newRenderer(t, "")
	cases := map[string]func(*View){
		"AccentColor": func(v *View) { v.Brand.AccentColor = "red;background:url(x)" },
		"ViewURL":     func(v *View) { v.ViewURL = "javascript:alert(1)" },
		"LogoHTTP":    func(v *View) { v.Brand.LogoURL = "http://news.example/logo.png" },
		"Lang":        func(v *View) { v.Brand.Lang = `en" onload="x` },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			v := testView(1, 0)
			mod(&v)
			if _, err := r.Prepare(v); err == nil {
				t.Errorf("want an error")
			}
		})
	}
	t.Run("EditionSubjectOneLine", func(t *testing.T) {
		v := testView(1, 0)
		v.Edition.Subject = "  Big\r\nnews\ttoday "
		if got, want := prepare(t, r, v).Subject, "Big news today"; got != want {
			t.Errorf("Subject = %q, want %q", got, want)
		}
	})
	t.Run("ForgedMarkerIsText", func(t *testing.T) {
		v := testView(1, 0)
		v.Edition.Stories.Top[0].Article.Title = markerPrefix + "0000000000000000U"
		h, txt := prepare(t, r, v).Personalize(fullRecipient)
		if !bytes.Contains(h, []byte(markerPrefix+"0000000000000000U")) || !bytes.Contains(txt, []byte(markerPrefix+"0000000000000000U")) {
			t.Errorf("a title that looks like a marker must stay text")
		}
	})
	t.Run("InsecureImageDropped", func(t *testing.T) {
		v := testView(1, 0)
		v.Edition.Stories.Top[0].Article.ImageURL = "http://img.news.example/x.jpg"
		h, _ := prepare(t, r, v).Personalize(fullRecipient)
		if bytes.Contains(h, []byte("img.news.example")) {
			t.Errorf("an http image was kept")
		}
	})
}

func TestRenderPreviewHTML(t *testing.T) {
	r := newRenderer(t, "")
	h, err := r.RenderPreviewHTML(testView(1, 1), fullRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(h, []byte("<!DOCTYPE html>")) || !bytes.Contains(h, []byte("Hi Ann,")) {
		t.Errorf("preview is not a personalized document:\n%.300s", h)
	}
}

func BenchmarkPersonalize(b *testing.B) {
	r, err := New("")
	if err != nil {
		b.Fatal(err)
	}
	p, err := r.Prepare(testView(5, 5))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Personalize(fullRecipient)
	}
}
