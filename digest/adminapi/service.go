// Package adminapi is the admin API of the newsdigest daemon: JSON over
// HTTP under /api/, every request authorized by a bearer token; and the
// Client that the CLI uses to reach it.
//
// Service is what the admin commands (subscribers, lists, feeds,
// articles, editions) need. Direct serves it from an open boltstore.Store, Client
// from a daemon over HTTP: the CLI works on either without knowing which,
// so a command gives the same result whether or not the daemon runs.
package adminapi

import (
	"fmt"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/boltstore"
	"newsdigest/digest/schedule"
	"newsdigest/subscribers"
)

// Service is the admin interface shared by the direct store and the API
// client. Errors wrap boltstore.ErrNotFound, boltstore.ErrExists and
// boltstore.ErrAmbiguous where the store's do, on both sides.
type Service interface {
	Lists() ([]subscribers.List, error)
	GetList(name string) (subscribers.List, error)
	PutList(l subscribers.List) error
	DeleteList(name string) error
	// GetListSchedule is what the scheduler last did for the list (its
	// last slot and run); zero when it has not run it yet.
	GetListSchedule(list string) (schedule.ListState, error)

	CountSubscribers(list string, status subscribers.Status) (int, error)
	Subscribers(q boltstore.SubscriberQuery) ([]subscribers.Subscriber, error)
	GetSubscriber(email string) (subscribers.Subscriber, error)
	AddSubscriber(sub subscribers.Subscriber) error
	PutSubscriber(sub subscribers.Subscriber) error
	DeleteSubscriber(email string) error
	UpsertSubscribers(batch []subscribers.Row, update bool) (added, updated, skipped int, err error)

	Feeds() ([]digest.Feed, error)
	GetFeed(idOrURL string) (digest.Feed, error)
	PutFeed(f digest.Feed) error
	DeleteFeed(idOrURL string) error

	Articles(since time.Time) ([]digest.Article, error)
	GetArticle(idOrPrefix string) (digest.Article, error)
	UpsertArticles(as []digest.Article) (added, merged int, err error)
	SetViews(views map[string]int64) (updated int, missing []string, err error)
	EditArticle(idOrPrefix string, e ArticleEdit) (digest.Article, error)

	Editions(list string) ([]digest.Edition, error)
	GetEdition(id string) (digest.Edition, error)
	EditionDetail(id string) (EditionDetail, error)
	PauseEdition(id string) (digest.Edition, error)
	EditionStats(id string) (EditionStats, error)
}

// ArticleEdit changes an article's editorial flags; nil fields stay.
type ArticleEdit struct {
	Pinned   *bool    `json:"pinned,omitempty"`
	Boost    *float64 `json:"boost,omitempty"`
	Excluded *bool    `json:"excluded,omitempty"`
}

// Apply sets e's fields on a.
func (e ArticleEdit) Apply(a *digest.Article) error {
	if e.Boost != nil {
		if *e.Boost <= 0 {
			return fmt.Errorf("boost %g: want a positive factor", *e.Boost)
		}
		a.Boost = *e.Boost
	}
	if e.Pinned != nil {
		a.Pinned = *e.Pinned
	}
	if e.Excluded != nil {
		a.Excluded = *e.Excluded
	}
	return nil
}

// Direct serves Service from an open store: the CLI when no daemon holds
// the file, and the daemon's API server.
type Direct struct{ *boltstore.Store }

var _ Service = Direct{}

// The bbolt store lists failures without reading the whole ledger.
var _ FailureLister = (*boltstore.Store)(nil)

// EditArticle applies e to the article with that ID or unique ID prefix
// in one transaction.
func (d Direct) EditArticle(idOrPrefix string, e ArticleEdit) (digest.Article, error) {
	a, err := d.GetArticle(idOrPrefix)
	if err != nil {
		return a, err
	}
	return d.UpdateArticle(a.ID, e.Apply)
}
