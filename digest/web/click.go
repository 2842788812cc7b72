package web

import (
	"net/http"
	"net/url"
	"strings"

	"newsdigest/subscribers"
)

// ClickRecorder counts a click on a story of an edition and adds it to
// the story's popularity (boltstore.Store implements it).
type ClickRecorder interface {
	RecordClick(editionID, articleID string) (int64, error)
}

// handleClick is GET /c/{token}: the click-tracking redirect of digest
// links. The token is signed for subscribers.PurposeClick and names only
// an article (Subject) and an edition (List); the target is the link of
// that story as the edition stored it, never anything from the request,
// so the route cannot be used as an open redirect. A GET is counted (when
// Clicks is set) and answered 302; a HEAD, as link scanners send, only
// answers. A bad token, an unknown edition or story, or a stored link that
// is not http(s) all get the one bad-link page.
func (s *Server) handleClick(w http.ResponseWriter, r *http.Request) {
	c, err := s.Signer.Verify(subscribers.PurposeClick, r.PathValue("token"), s.now())
	if err != nil || c.List == "" || c.Subject == "" {
		s.badLink(w, r)
		return
	}
	ed, err := s.Store.GetEdition(c.List)
	if err != nil {
		s.badLink(w, r)
		return
	}
	target := ""
	if a, ok := ed.Story(c.Subject); ok { // any recipient's copy: stories or pool
		target = a.Link
	}
	if !redirectable(target) {
		s.log().Warn("click: no usable stored link", "edition", ed.ID, "article", c.Subject)
		s.badLink(w, r)
		return
	}
	if r.Method == http.MethodGet && s.Clicks != nil {
		if _, err := s.Clicks.RecordClick(ed.ID, c.Subject); err != nil {
			// The reader still gets the story.
			s.log().Error("click: record", "edition", ed.ID, "article", c.Subject, "err", err)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// redirectable reports an absolute http(s) URL without spaces or control
// characters: the only targets the click redirect sends anyone to.
func redirectable(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		!strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}
