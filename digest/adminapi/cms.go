package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/feed"
)

// CMS ingest:
//
//	POST /api/cms/articles   one article object or an array of them, in the shape of
//	                         `articles import` JSON: guid, link, title, summary (HTML),
//	                         image, author, categories, published (RFC 3339), views.
//	                         An entry with only guid and views is a popularity update.
//
// Entries are cleaned exactly as feed items and imported files are
// (sanitized summary, plain-text title, absolute https image…), so a
// CMS cannot put markup or bad links in an email. Pushing the same GUID
// again updates that article: the endpoint is idempotent by GUID (else by
// canonical link). Bad entries are reported with their position and the
// rest are stored.

// PushResult answers POST /api/cms/articles.
type PushResult struct {
	Added        int        `json:"added"`         // articles new to the store
	Updated      int        `json:"updated"`       // articles already known (same GUID or link), updated
	ViewsUpdated int        `json:"views_updated"` // popularity updates applied
	Unknown      []string   `json:"unknown"`       // GUIDs of popularity updates for no known article
	Rejected     []Rejected `json:"rejected"`      // entries not stored, with why
}

// Rejected is an entry of a push that was not stored.
type Rejected struct {
	Entry  int    `json:"entry"` // 1-based position in the array (1 for a single object)
	Reason string `json:"reason"`
}

// StoreArticles stores cleaned CMS entries through svc: popularity updates
// (feed.IsPopularityUpdate) set the views of known articles, the others are
// added or merged. source marks new articles without one (e.g. "cms").
func StoreArticles(svc Service, arts []digest.Article, source string) (PushResult, error) {
	var full []digest.Article
	views := map[string]int64{}
	for _, a := range arts {
		if feed.IsPopularityUpdate(a) {
			views[a.GUID] = a.Views
			continue
		}
		if a.Source == "" {
			a.Source = source
		}
		full = append(full, a)
	}
	res := PushResult{Unknown: []string{}, Rejected: []Rejected{}}
	var err error
	if len(full) > 0 {
		if res.Added, res.Updated, err = svc.UpsertArticles(full); err != nil {
			return res, err
		}
	}
	if len(views) > 0 {
		var missing []string
		if res.ViewsUpdated, missing, err = svc.SetViews(views); err != nil {
			return res, err
		}
		res.Unknown = append(res.Unknown, missing...)
	}
	return res, nil
}

func (s *Server) handleCMSArticles(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, Error{Error: "body too large", Code: "invalid"})
			return
		}
		s.error(w, r, invalid("body: %v", err))
		return
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' {
		body = append(append([]byte("["), trimmed...), ']') // one article
	}
	arts, bad, err := feed.ReadArticlesJSON(bytes.NewReader(body), time.Now())
	if err != nil {
		s.error(w, r, invalid("%v", err))
		return
	}
	res, err := StoreArticles(s.Service, arts, "cms")
	if err != nil {
		s.error(w, r, err)
		return
	}
	for _, b := range bad {
		res.Rejected = append(res.Rejected, Rejected{Entry: b.Line, Reason: b.Reason})
	}
	s.log().Info("CMS push", "added", res.Added, "updated", res.Updated, "views", res.ViewsUpdated,
		"unknown", len(res.Unknown), "rejected", len(res.Rejected))
	writeJSON(w, http.StatusOK, res)
}

// PushArticles sends a CMS push (one JSON object or an array, as a CMS
// would post it) to POST /api/cms/articles.
func (c *Client) PushArticles(body []byte) (PushResult, error) {
	var res PushResult
	err := c.do(http.MethodPost, "/api/cms/articles", nil, json.RawMessage(body), &res)
	return res, err
}
