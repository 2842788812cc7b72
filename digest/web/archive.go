package web

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// archived reports whether an edition belongs in the public archive: it
// went out to at least one subscriber.
func archived(e digest.Edition) bool {
	return e.Sent > 0 && e.Stories.Len() > 0
}

// FeedSize is how many editions the RSS feed carries.
const FeedSize = 50

// editions returns the archived editions of every list, newest first, and
// the lists by name.
func (s *Server) editions() ([]digest.Edition, map[string]subscribers.List, error) {
	lists, err := s.Store.Lists()
	if err != nil {
		return nil, nil, err
	}
	byName := make(map[string]subscribers.List, len(lists))
	var out []digest.Edition
	for _, l := range lists {
		byName[l.Name] = l
		eds, err := s.Store.Editions(l.Name)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range eds {
			if archived(e) {
				out = append(out, e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Slot.Equal(out[j].Slot) {
			return out[i].Slot.After(out[j].Slot)
		}
		return out[i].ID < out[j].ID
	})
	return out, byName, nil
}

func (s *Server) handleArchive(w http.ResponseWriter, r *http.Request) {
	eds, lists, err := s.editions()
	if err != nil {
		s.internal(w, r, "archive", err)
		return
	}
	d := s.base("Archive")
	d.FeedURL = s.local("/archive/feed.xml")
	for _, e := range eds {
		d.Editions = append(d.Editions, editionRow{
			URL: s.local("/archive/" + e.ID), Subject: e.Subject, List: listTitle(lists[e.List]),
			Date: e.Slot.UTC().Format("2 January 2006"),
		})
	}
	s.render(w, "archive", d)
}

var editionIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}-\d{8}-\d{4}$`)

// handleEdition shows one sent edition as a web page, rendered by the same
// templates as the email for a neutral reader: no name, no personal links.
func (s *Server) handleEdition(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("edition")
	if !editionIDRe.MatchString(id) {
		s.handleNotFound(w, r)
		return
	}
	if html, ok := s.archive.get(id); ok {
		writeArchivePage(w, html)
		return
	}
	e, err := s.Store.GetEdition(id)
	if err != nil || !archived(e) {
		s.handleNotFound(w, r)
		return
	}
	l, err := s.Store.GetList(e.List)
	if err != nil {
		s.handleNotFound(w, r)
		return
	}
	if s.Renderer == nil {
		s.internal(w, r, "archive", errNoRenderer)
		return
	}
	html, err := s.Renderer.RenderPreviewHTML(render.View{List: l, Edition: e, Brand: s.Brand}, render.Recipient{})
	if err != nil {
		s.internal(w, r, "archive edition "+id, err)
		return
	}
	s.archive.put(id, html)
	writeArchivePage(w, html)
}

type constError string

func (e constError) Error() string { return string(e) }

const errNoRenderer = constError("web: no renderer for archive pages")

func writeArchivePage(w http.ResponseWriter, html []byte) {
	h := w.Header()
	h.Set("Content-Security-Policy", cspArchive)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	w.Write(html)
}

// archiveCache keeps rendered archive pages: rendering inlines CSS, which
// is too slow to repeat for every visitor. Sent editions do not change.
type archiveCache struct {
	mu    sync.Mutex
	max   int
	pages map[string][]byte
	order []string
}

func newArchiveCache(max int) *archiveCache {
	return &archiveCache{max: max, pages: make(map[string][]byte)}
}

func (c *archiveCache) get(id string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.pages[id]
	return b, ok
}

func (c *archiveCache) put(id string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pages[id]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.pages, c.order[0])
		c.order = c.order[1:]
	}
	c.pages[id] = b
	c.order = append(c.order, id)
}

// RSS 2.0.
type rss struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title       string    `xml:"title"`
	Link        string    `xml:"link"`
	Description string    `xml:"description"`
	Language    string    `xml:"language,omitempty"`
	LastBuild   string    `xml:"lastBuildDate,omitempty"`
	Items       []rssItem `xml:"item"`
}

type rssItem struct {
	Title       string  `xml:"title"`
	Link        string  `xml:"link"`
	GUID        rssGUID `xml:"guid"`
	PubDate     string  `xml:"pubDate"`
	Description string  `xml:"description,omitempty"`
	Category    string  `xml:"category,omitempty"`
}

type rssGUID struct {
	IsPermaLink string `xml:"isPermaLink,attr"`
	Value       string `xml:",chardata"`
}

func (s *Server) handleFeed(w http.ResponseWriter, r *http.Request) {
	eds, lists, err := s.editions()
	if err != nil {
		s.internal(w, r, "archive feed", err)
		return
	}
	if len(eds) > FeedSize {
		eds = eds[:FeedSize]
	}
	site := s.base("").SiteName
	ch := rssChannel{
		Title: site + " newsletter archive", Link: s.url("/archive"),
		Description: "Past editions of " + site + "'s newsletters", Language: s.base("").Lang,
	}
	if len(eds) > 0 {
		ch.LastBuild = editionTime(eds[0]).Format(time.RFC1123Z)
	}
	for _, e := range eds {
		var titles bytes.Buffer
		for i, p := range append(append([]digest.Pick(nil), e.Stories.Top...), e.Stories.Recent...) {
			if i > 0 {
				titles.WriteString(" · ")
			}
			titles.WriteString(cleanName(p.Article.Title))
		}
		link := s.url("/archive/" + e.ID)
		ch.Items = append(ch.Items, rssItem{
			Title: cleanName(e.Subject), Link: link, GUID: rssGUID{IsPermaLink: "true", Value: link},
			PubDate: editionTime(e).Format(time.RFC1123Z), Description: titles.String(),
			Category: listTitle(lists[e.List]),
		})
	}
	out, err := xml.MarshalIndent(rss{Version: "2.0", Channel: ch}, "", "  ")
	if err != nil {
		s.internal(w, r, "archive feed", err)
		return
	}
	w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write([]byte(xml.Header))
	w.Write(out)
}

func editionTime(e digest.Edition) time.Time {
	if !e.Finished.IsZero() {
		return e.Finished.UTC()
	}
	return e.Slot.UTC()
}
