package delivery

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"newsdigest/digest"
	"newsdigest/digest/render"
	"newsdigest/subscribers"
)

// Per-subscriber content.
//
// An edition holds a candidate pool (Edition.Pool), fixed when it is
// created. Each recipient's stories are derived from it by digest.Select
// with the edition's creation time as "now", so that a send resumed after
// a crash computes the same copy:
//   - only stories in the topics they chose, if any (an article's
//     categories, compared case-insensitively);
//   - never a story they were sent before (the store's per-subscriber
//     history, kept for Engine.History);
//   - daily readers: the list's window; weekly readers: the last 7 days
//     (WeekWindow), on their weekday only (WeekdayOf).
//
// A recipient left with fewer stories than the list's minimum is
// skipped (digest.DeliverySkipped), never sent an empty email. Recipients
// with the same stories share one rendered variant: premailer runs once
// per variant and Deliver keeps the prepared variants of its run.

// WeekWindow is the window of weekly readers' stories.
const WeekWindow = 7 * 24 * time.Hour

// DefaultHistory is how long a sent story keeps counting as sent to its
// recipient when Engine.History is zero.
const DefaultHistory = 30 * 24 * time.Hour

// DefaultWeekday is the weekday of weekly readers who did not choose one.
const DefaultWeekday = time.Monday

// WeekdayAttr is the subscriber attribute that names a weekly reader's
// day ("monday" or "mon", any case; a CSV import column of that name sets
// it).
const WeekdayAttr = "weekday"

// HistoryStore is what the engine needs for the never-repeat rule; the
// bbolt store implements it. A Store without it sends every recipient
// the edition's Stories, filtered by topic.
type HistoryStore interface {
	// SeenStories returns, per subscriber address (as in the ledger),
	// the stories sent to them at or after since.
	SeenStories(emails []string, since time.Time) (map[string]map[string]bool, error)
	// RecordDeliveriesWithHistory records ds and adds each subscriber's
	// stories (address → article IDs) to their history, in one
	// transaction, dropping entries before keepSince.
	RecordDeliveriesWithHistory(ds []digest.Delivery, hist map[string][]string, at, keepSince time.Time) error
}

// WeekdayOf returns the weekday a weekly reader gets their edition on.
func WeekdayOf(sub subscribers.Subscriber) time.Weekday {
	if d, ok := ParseWeekday(sub.Attrs[WeekdayAttr]); ok {
		return d
	}
	return DefaultWeekday
}

// ParseWeekday reads "monday", "Mon" or "1" (Sunday = 0 or 7).
func ParseWeekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return 0, false
	}
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		if s == name || s == name[:3] {
			return d, true
		}
	}
	if len(s) == 1 && s[0] >= '0' && s[0] <= '7' {
		return time.Weekday((s[0] - '0') % 7), true
	}
	return 0, false
}

func (e *Engine) history() time.Duration {
	if e.History > 0 {
		return e.History
	}
	return DefaultHistory
}

func (e *Engine) historyStore() HistoryStore {
	if e.History < 0 {
		return nil
	}
	hs, _ := e.Store.(HistoryStore)
	return hs
}

// buildPool returns the candidate pool of an edition of list at now: the
// stories a recipient's copy may hold. It keeps, among the articles
// published within the list's window or a week (whichever is longer),
// the pinned ones, the best scored and the newest for both windows, and
// the best scored of each category, so that topic readers find theirs.
func buildPool(arts []digest.Article, p digest.Policy, now time.Time) []digest.Pick {
	per := max(4*(p.TopCount+p.RecentCount), 40)
	win := max(p.Window, WeekWindow)
	type cand struct {
		a     digest.Article
		score float64
	}
	var cands []cand
	for _, a := range arts {
		age := now.Sub(a.Published)
		if a.Excluded || age > win || age < -time.Hour {
			continue
		}
		cands = append(cands, cand{a, digest.Score(a, now, p.Gravity)})
	}
	keep := map[string]digest.Pick{}
	add := func(c cand, why string) {
		if _, ok := keep[c.a.ID]; ok {
			return
		}
		keep[c.a.ID] = digest.Pick{Article: c.a, Section: "pool", Score: c.score, Age: max(now.Sub(c.a.Published), 0), Reason: why}
	}
	byScore := slices.Clone(cands)
	sort.SliceStable(byScore, func(i, j int) bool {
		if byScore[i].score != byScore[j].score {
			return byScore[i].score > byScore[j].score
		}
		return byScore[i].a.ID < byScore[j].a.ID
	})
	byNew := slices.Clone(cands)
	sort.SliceStable(byNew, func(i, j int) bool {
		if !byNew[i].a.Published.Equal(byNew[j].a.Published) {
			return byNew[i].a.Published.After(byNew[j].a.Published)
		}
		return byNew[i].a.ID < byNew[j].a.ID
	})
	for _, c := range cands {
		if c.a.Pinned {
			add(c, "pinned")
		}
	}
	for _, w := range []time.Duration{p.Window, WeekWindow} {
		n, m := 0, 0
		for _, c := range byScore {
			if n < per && now.Sub(c.a.Published) <= w {
				add(c, fmt.Sprintf("top %d by score within %s", per, w))
				n++
			}
		}
		for _, c := range byNew {
			if m < per && now.Sub(c.a.Published) <= w {
				add(c, fmt.Sprintf("newest %d within %s", per, w))
				m++
			}
		}
	}
	perCat := map[string]int{}
	for _, c := range byScore {
		for _, cat := range c.a.Categories {
			k := strings.ToLower(strings.TrimSpace(cat))
			if k != "" && perCat[k] < p.TopCount+p.RecentCount {
				perCat[k]++
				add(c, "best of category "+k)
			}
		}
	}
	out := make([]digest.Pick, 0, len(keep))
	for _, pk := range keep {
		out = append(out, pk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Article.ID < out[j].Article.ID })
	return out
}

// content is one recipient's copy of an edition: their stories and the
// key of the variant they share with everyone who has the same stories;
// or why they are skipped.
type content struct {
	key  string
	sel  digest.Selection
	skip string // non-empty: nothing to send, and why
}

// content derives sub's copy of the edition from its pool. seen is their
// history (nil: none); queued is when their delivery was queued (a weekly
// reader's weekday is judged at that moment in their time zone).
func (v *variants) content(sub subscribers.Subscriber, seen map[string]bool, queued time.Time) content {
	ed := v.ed
	p := PolicyOf(v.list)
	weekly := sub.Frequency == subscribers.Weekly
	if weekly {
		loc := time.UTC
		if l, err := time.LoadLocation(sub.Timezone); err == nil && sub.Timezone != "" {
			loc = l
		}
		if queued.IsZero() {
			queued = ed.Created
		}
		if day := WeekdayOf(sub); queued.In(loc).Weekday() != day {
			return content{skip: fmt.Sprintf("weekly reader: their day is %s", day)}
		}
	}
	topics := normTopics(sub.Topics)
	if len(ed.Pool) == 0 {
		// An edition from before pools: everyone gets its stories, in
		// their topics, less what they had.
		sel := filterSelection(ed.Stories, topics, seen)
		c := content{key: variantKey(false, sel), sel: sel}
		if sel.Len() < p.MinStories {
			c.skip = skipReason(topics, sel.Len(), p.MinStories)
		}
		return c
	}
	if !weekly && len(topics) == 0 {
		// The common case: a daily reader with no topics. Leaving out
		// stories that the newcomers' copy does not hold changes nothing
		// in digest.Select, so whoever has had none of that copy gets it.
		v.baseOnce.Do(func() { v.base = poolContent(ed, p, nil, nil, false) })
		if !intersects(seen, v.base.sel) {
			return v.base
		}
	}
	if weekly {
		p.Window = WeekWindow
	}
	return poolContent(ed, p, topics, seen, weekly)
}

func poolContent(ed digest.Edition, p digest.Policy, topics map[string]bool, seen map[string]bool, weekly bool) content {
	arts := make([]digest.Article, 0, len(ed.Pool))
	for _, pk := range ed.Pool {
		if len(topics) > 0 && !inTopics(pk.Article, topics) {
			continue
		}
		arts = append(arts, pk.Article)
	}
	var seenFn func(string) bool
	if len(seen) > 0 {
		seenFn = func(id string) bool { return seen[id] }
	}
	sel := digest.Select(arts, p, ed.Created, seenFn)
	c := content{key: variantKey(weekly, sel), sel: sel}
	if sel.Len() < p.MinStories {
		c.skip = skipReason(topics, sel.Len(), p.MinStories)
	}
	return c
}

func skipReason(topics map[string]bool, n, min int) string {
	if len(topics) > 0 {
		return fmt.Sprintf("nothing new for this reader: %d new stories in their topics, the list needs %d", n, min)
	}
	return fmt.Sprintf("nothing new for this reader: %d new stories, the list needs %d", n, min)
}

func intersects(seen map[string]bool, sel digest.Selection) bool {
	if len(seen) == 0 {
		return false
	}
	for _, ps := range [2][]digest.Pick{sel.Top, sel.Recent} {
		for i := range ps {
			if seen[ps[i].Article.ID] {
				return true
			}
		}
	}
	return false
}

func filterSelection(sel digest.Selection, topics, seen map[string]bool) digest.Selection {
	if len(topics) == 0 && len(seen) == 0 {
		return sel
	}
	keep := func(ps []digest.Pick) []digest.Pick {
		var out []digest.Pick
		for _, p := range ps {
			if seen[p.Article.ID] || (len(topics) > 0 && !inTopics(p.Article, topics)) {
				continue
			}
			out = append(out, p)
		}
		return out
	}
	return digest.Selection{Top: keep(sel.Top), Recent: keep(sel.Recent)}
}

func normTopics(ts []string) map[string]bool {
	var m map[string]bool
	for _, t := range ts {
		if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
			if m == nil {
				m = make(map[string]bool)
			}
			m[t] = true
		}
	}
	return m
}

func inTopics(a digest.Article, topics map[string]bool) bool {
	for _, c := range a.Categories {
		if topics[strings.ToLower(strings.TrimSpace(c))] {
			return true
		}
	}
	return false
}

// variantKey names a copy by its stories, in order, and sections.
func variantKey(weekly bool, sel digest.Selection) string {
	h := sha256.New()
	if weekly {
		h.Write([]byte("w"))
	}
	for _, ps := range [2][]digest.Pick{sel.Top, sel.Recent} {
		for i := range ps {
			h.Write([]byte(ps[i].Section))
			h.Write([]byte{0})
			h.Write([]byte(ps[i].Article.ID))
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// variants caches the prepared rendering of each variant of one edition
// within a Deliver run: premailer runs once per variant, even when
// several workers need the same one at once.
type variants struct {
	e    *Engine
	list subscribers.List
	ed   digest.Edition
	view func(subscribers.List, digest.Edition) render.View

	baseOnce sync.Once
	base     content

	mu sync.Mutex
	m  map[string]*variant
}

type variant struct {
	once sync.Once
	prep *render.Prepared
	err  error
}

// maxVariants bounds the cache; past it, entries are dropped (and
// re-rendered if needed again).
const maxVariants = 512

// seed caches an already prepared variant.
func (v *variants) seed(key string, prep *render.Prepared) {
	ent := &variant{prep: prep}
	ent.once.Do(func() {})
	v.mu.Lock()
	if v.m == nil {
		v.m = make(map[string]*variant)
	}
	v.m[key] = ent
	v.mu.Unlock()
}

func (v *variants) get(c content) (*render.Prepared, error) {
	v.mu.Lock()
	if v.m == nil {
		v.m = make(map[string]*variant)
	}
	ent := v.m[c.key]
	if ent == nil {
		if len(v.m) >= maxVariants {
			for k := range v.m {
				delete(v.m, k)
				break
			}
		}
		ent = &variant{}
		v.m[c.key] = ent
	}
	v.mu.Unlock()
	ent.once.Do(func() {
		ed := v.ed
		ed.Stories = c.sel
		ed.Pool = nil
		ent.prep, ent.err = v.e.Renderer.Prepare(v.view(v.list, ed))
	})
	return ent.prep, ent.err
}
