package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"strings"

	"newsdigest/templates"
)

// Page template files under templates.FS "web/".
var pageFiles = []string{
	"subscribe.html.tmpl", "message.html.tmpl", "unsubscribe.html.tmpl",
	"preferences.html.tmpl", "data.html.tmpl", "archive.html.tmpl",
}

type pages struct {
	t         map[string]*template.Template
	timezones []string
	zoneSet   map[string]bool
}

func loadPages() (*pages, error) {
	p := &pages{t: make(map[string]*template.Template)}
	funcs := template.FuncMap{"inc": func(i int) int { return i + 1 }}
	for _, f := range pageFiles {
		t, err := template.New(f).Funcs(funcs).ParseFS(templates.FS, "web/layout.html.tmpl", "web/"+f)
		if err != nil {
			return nil, fmt.Errorf("web: parse templates/web/%s: %w", f, err)
		}
		p.t[strings.TrimSuffix(f, ".html.tmpl")] = t
	}
	raw, err := templates.FS.ReadFile("web/timezones.txt")
	if err != nil {
		return nil, fmt.Errorf("web: templates/web/timezones.txt: %w", err)
	}
	p.zoneSet = make(map[string]bool)
	for _, z := range strings.Split(string(raw), "\n") {
		if z = strings.TrimSpace(z); z != "" && !p.zoneSet[z] {
			p.timezones = append(p.timezones, z)
			p.zoneSet[z] = true
		}
	}
	return p, nil
}

// asset returns an embedded static file of the pages.
func asset(name string) ([]byte, string, bool) {
	var ctype string
	switch name {
	case "style.css":
		ctype = "text/css; charset=utf-8"
	case "web.js":
		ctype = "text/javascript; charset=utf-8"
	default:
		return nil, "", false
	}
	b, err := templates.FS.ReadFile("web/" + name)
	return b, ctype, err == nil
}

// pageData is what every page template sees; each page uses its part.
type pageData struct {
	Lang     string
	SiteName string
	SiteURL  string
	Title    string
	Prefix   string // path prefix for same-origin links
	Status   int

	// message
	Heading    string
	Paragraphs []string
	LinkURL    string
	LinkText   string

	// subscribe
	Error    string
	Email    string
	Name     string
	Lists    []listOption
	OneList  string // the only list, sent as a hidden field
	Honeypot string

	// unsubscribe, preferences, data
	Action       string
	ListTitle    string
	Notice       string
	Frequency    string
	Topics       []topicOption
	Timezones    []zoneOption
	TZFromClient bool // no time zone stored yet: web.js may pick the browser's
	Hours        []hourOption
	DataURL      string
	ExportURL    string
	DeleteURL    string
	PrefsURL     string
	Shown        string // preferences: the lists shown ticked, comma-separated (a hidden field)

	// archive
	Editions []editionRow
	FeedURL  string
}

type listOption struct {
	Name, Title string
	Checked     bool
	Status      string
}

type topicOption struct {
	Name    string
	Checked bool
}

type zoneOption struct {
	Name     string
	Selected bool
}

type hourOption struct {
	Value    int
	Label    string
	Selected bool
}

type editionRow struct {
	URL, Subject, List, Date string
}

func (s *Server) base(title string) pageData {
	lang := s.Brand.Lang
	if lang == "" {
		lang = "en"
	}
	name := s.Brand.SiteName
	if name == "" {
		name = "Newsletter"
	}
	return pageData{Lang: lang, SiteName: name, SiteURL: s.Brand.SiteURL, Title: title, Prefix: s.prefix, Status: http.StatusOK}
}

// render writes page name with d.
func (s *Server) render(w http.ResponseWriter, name string, d pageData) {
	t := s.pages.t[name]
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", d); err != nil {
		s.log().Error("web: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if d.Status == 0 {
		d.Status = http.StatusOK
	}
	w.WriteHeader(d.Status)
	w.Write(b.Bytes())
}

// message writes the generic one-message page.
func (s *Server) message(w http.ResponseWriter, status int, heading string, paragraphs ...string) {
	d := s.base(heading)
	d.Status, d.Heading, d.Paragraphs = status, heading, paragraphs
	s.render(w, "message", d)
}

// fail answers an error: JSON for JSON clients, a page otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, heading, text string) {
	if wantsJSON(r) {
		writeJSON(w, status, map[string]any{"ok": false, "error": text})
		return
	}
	s.message(w, status, heading, text)
}

// badLink is the one answer to every bad token: forged, tampered,
// expired, for another purpose, or naming nobody.
func (s *Server) badLink(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusBadRequest, "This link does not work",
		"The link is incomplete, has expired or is no longer valid. If you copied it from an email, check that it is whole; otherwise ask for a new one.")
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// wantsJSON says whether the client sent JSON or asks for it.
func wantsJSON(r *http.Request) bool {
	if isJSONType(r.Header.Get("Content-Type")) {
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
