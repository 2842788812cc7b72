package adminapi

import (
	"net/http"
	"time"
)

// EditionStats is what an edition did: GET /api/editions/{id}/stats and
// `newsdigest editions show`.
type EditionStats struct {
	Edition    string `json:"edition"`
	List       string `json:"list"`
	Status     string `json:"status"`
	Sent       int    `json:"sent"`
	Failed     int    `json:"failed"`
	Suppressed int    `json:"suppressed"`
	Queued     int    `json:"queued"`
	Clicks     int64  `json:"clicks"` // on all its stories
	// Unsubscribes counts recipients of the edition who unsubscribed from
	// its list after it was created and before the list's next edition
	// (and are still unsubscribed).
	Unsubscribes int          `json:"unsubscribes"`
	Stories      []StoryStats `json:"stories"`
}

// StoryStats is one story of an edition and its clicks.
type StoryStats struct {
	Article string `json:"article"`
	Title   string `json:"title"`
	Section string `json:"section"`
	Clicks  int64  `json:"clicks"`
}

// EditionStats computes an edition's stats from the store.
func (d Direct) EditionStats(id string) (EditionStats, error) {
	ed, err := d.GetEdition(id)
	if err != nil {
		return EditionStats{}, err
	}
	queued, err := d.CountPending(ed.ID)
	if err != nil {
		return EditionStats{}, err
	}
	clicks, err := d.EditionClicks(ed.ID)
	if err != nil {
		return EditionStats{}, err
	}
	eds, err := d.Editions(ed.List)
	if err != nil {
		return EditionStats{}, err
	}
	var until time.Time // the list's next edition
	for _, e := range eds {
		if e.ID != ed.ID && e.Created.After(ed.Created) && (until.IsZero() || e.Created.Before(until)) {
			until = e.Created
		}
	}
	unsubs, err := d.EditionUnsubscribes(ed, until)
	if err != nil {
		return EditionStats{}, err
	}
	st := EditionStats{
		Edition: ed.ID, List: ed.List, Status: string(ed.Status),
		Sent: ed.Sent, Failed: ed.Failed, Suppressed: ed.Suppressed, Queued: queued,
		Unsubscribes: unsubs, Stories: []StoryStats{},
	}
	for _, p := range ed.Stories.Picks() {
		n := clicks[p.Article.ID]
		st.Clicks += n
		st.Stories = append(st.Stories, StoryStats{Article: p.Article.ID, Title: p.Article.Title, Section: p.Section, Clicks: n})
	}
	return st, nil
}

func (s *Server) handleEditionStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.Service.EditionStats(r.PathValue("edition"))
	s.reply(w, r, st, err)
}

// EditionStats fetches an edition's stats from the daemon.
func (c *Client) EditionStats(id string) (EditionStats, error) {
	var st EditionStats
	return st, c.do(http.MethodGet, "/api/editions/"+seg(id)+"/stats", nil, nil, &st)
}
