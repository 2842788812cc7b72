package digest

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode"
)

// Policy says how a list's editions are filled. The zero value of each
// field means its default (see the Default* constants).
type Policy struct {
	TopCount    int           `json:"top_count"`    // stories in "top"
	RecentCount int           `json:"recent_count"` // stories in "recent"
	Window      time.Duration `json:"window"`       // only stories published within this window
	MinStories  int           `json:"min_stories"`  // fewer new stories than this: skip the edition
	CategoryCap int           `json:"category_cap"` // at most this many top stories share a first category; 0 = no cap
	Gravity     float64       `json:"gravity"`      // recency decay exponent
}

// Defaults for a Policy's zero fields.
const (
	DefaultTopCount    = 5
	DefaultRecentCount = 5
	DefaultWindow      = 48 * time.Hour
	DefaultMinStories  = 1
	DefaultGravity     = 1.5
	// ClickWeight is how many CMS views one digest click is worth.
	ClickWeight = 10
)

// WithDefaults returns p with zero fields set to their defaults.
func (p Policy) WithDefaults() Policy {
	if p.TopCount <= 0 {
		p.TopCount = DefaultTopCount
	}
	if p.RecentCount < 0 {
		p.RecentCount = 0
	} else if p.RecentCount == 0 {
		p.RecentCount = DefaultRecentCount
	}
	if p.Window <= 0 {
		p.Window = DefaultWindow
	}
	if p.MinStories <= 0 {
		p.MinStories = DefaultMinStories
	}
	if p.Gravity <= 0 {
		p.Gravity = DefaultGravity
	}
	return p
}

// Sections of an edition.
const (
	SectionTop    = "top"
	SectionRecent = "recent"
)

// Pick is one story chosen for an edition, with the reason it was chosen.
type Pick struct {
	Article Article       `json:"article"`
	Section string        `json:"section"`
	Score   float64       `json:"score"`
	Age     time.Duration `json:"age"`
	Reason  string        `json:"reason"`
}

// Selection is the stories of one edition.
type Selection struct {
	Top    []Pick `json:"top"`
	Recent []Pick `json:"recent"`
}

// Len is the number of stories selected.
func (s Selection) Len() int { return len(s.Top) + len(s.Recent) }

// Picks returns top then recent picks (a copy).
func (s Selection) Picks() []Pick {
	return append(append([]Pick(nil), s.Top...), s.Recent...)
}

// ArticleIDs returns the IDs of the top then recent picks, without
// copying the picks: the sender asks for them once per message.
func (s Selection) ArticleIDs() []string {
	ids := make([]string, 0, s.Len())
	for _, ps := range [2][]Pick{s.Top, s.Recent} {
		for i := range ps {
			ids = append(ids, ps[i].Article.ID)
		}
	}
	return ids
}

// Score is the popularity of an article at now, decayed by its age. It is
// the one place the ranking formula is written:
//
//	score = (views + ClickWeight·clicks + 1) · boost / (age_hours + 2)^gravity
//
// Boost 0 counts as 1. An article dated in the future has age 0. This is the
// "gravity" decay of Hacker News: a story needs ever more readers to stay
// on top as it ages, and a fresh story with few readers can beat an old one
// with many.
func Score(a Article, now time.Time, gravity float64) float64 {
	boost := a.Boost
	if boost <= 0 {
		boost = 1
	}
	hours := max(now.Sub(a.Published).Hours(), 0)
	pop := float64(a.Views) + ClickWeight*float64(a.Clicks) + 1
	return pop * boost / math.Pow(hours+2, gravity)
}

// Select chooses the stories of an edition at now. Articles that are
// excluded, published outside the policy's window (or in the future by more
// than an hour), or for which seen returns true are never picked.
// Near-duplicates (the same story from two feeds: see NearDuplicate) are
// collapsed first: the higher-scored copy (a pinned one first) stays and
// its reason names the others. Pinned articles lead "top" whatever their
// score. "recent" holds the newest remaining articles. seen may be nil.
func Select(articles []Article, p Policy, now time.Time, seen func(id string) bool) Selection {
	p = p.WithDefaults()
	type cand struct {
		a     Article
		score float64
		age   time.Duration
		dups  []Article // near-duplicates collapsed into this one
	}
	var cands []cand
	for _, a := range articles {
		age := now.Sub(a.Published)
		switch {
		case a.Excluded, age > p.Window, age < -time.Hour:
			continue
		case seen != nil && seen(a.ID):
			continue
		}
		cands = append(cands, cand{a: a, score: Score(a, now, p.Gravity), age: max(age, 0)})
	}
	cands = collapseNearDuplicates(cands, func(c cand) (Article, float64) { return c.a, c.score },
		func(c *cand, dup Article) { c.dups = append(c.dups, dup) })

	// Top: pinned first, then by score; ties by newer, then by ID so that
	// the result does not depend on input order.
	sort.SliceStable(cands, func(i, j int) bool {
		ci, cj := cands[i], cands[j]
		if ci.a.Pinned != cj.a.Pinned {
			return ci.a.Pinned
		}
		if ci.score != cj.score {
			return ci.score > cj.score
		}
		if !ci.a.Published.Equal(cj.a.Published) {
			return ci.a.Published.After(cj.a.Published)
		}
		return ci.a.ID < cj.a.ID
	})
	var sel Selection
	used := make(map[string]bool)
	perCategory := make(map[string]int)
	for _, c := range cands {
		if len(sel.Top) == p.TopCount {
			break
		}
		cat := firstCategory(c.a)
		if !c.a.Pinned && p.CategoryCap > 0 && cat != "" && perCategory[cat] >= p.CategoryCap {
			continue
		}
		perCategory[cat]++
		used[c.a.ID] = true
		sel.Top = append(sel.Top, Pick{
			Article: c.a, Section: SectionTop, Score: c.score, Age: c.age,
			Reason: topReason(c.a, c.score, c.age, len(sel.Top)+1) + dupReason(c.dups),
		})
	}

	// Recent: newest first among those not in top.
	sort.SliceStable(cands, func(i, j int) bool {
		if !cands[i].a.Published.Equal(cands[j].a.Published) {
			return cands[i].a.Published.After(cands[j].a.Published)
		}
		return cands[i].a.ID < cands[j].a.ID
	})
	for _, c := range cands {
		if len(sel.Recent) == p.RecentCount {
			break
		}
		if used[c.a.ID] {
			continue
		}
		sel.Recent = append(sel.Recent, Pick{
			Article: c.a, Section: SectionRecent, Score: c.score, Age: c.age,
			Reason: fmt.Sprintf("recent #%d: published %s ago, not in top", len(sel.Recent)+1, roundAge(c.age)) + dupReason(c.dups),
		})
	}
	return sel
}

func firstCategory(a Article) string {
	if len(a.Categories) == 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(a.Categories[0]))
}

func topReason(a Article, score float64, age time.Duration, rank int) string {
	if a.Pinned {
		return fmt.Sprintf("top #%d: pinned by an editor (score %.3f, %s old)", rank, score, roundAge(age))
	}
	r := fmt.Sprintf("top #%d: score %.3f from %d views, %d clicks, %s old", rank, score, a.Views, a.Clicks, roundAge(age))
	if a.Boost > 0 && a.Boost != 1 {
		r += fmt.Sprintf(", boost ×%g", a.Boost)
	}
	return r
}

func roundAge(d time.Duration) time.Duration {
	if d >= time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

// DuplicateThreshold is the title similarity at or above which two
// articles are the same story (see NearDuplicate).
const DuplicateThreshold = 0.8

// NearDuplicate reports whether two titles tell the same story: the
// Jaccard similarity of their word sets (lower-cased, punctuation
// dropped) is at least DuplicateThreshold. Titles without words never
// match.
func NearDuplicate(a, b string) bool {
	return jaccard(titleWords(a), titleWords(b)) >= DuplicateThreshold
}

func titleWords(title string) map[string]bool {
	words := strings.FieldsFunc(strings.ToLower(title), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	set := make(map[string]bool, len(words))
	for _, w := range words {
		set[w] = true
	}
	return set
}

func jaccard(x, y map[string]bool) float64 {
	if len(x) == 0 || len(y) == 0 {
		return 0
	}
	inter := 0
	for w := range x {
		if y[w] {
			inter++
		}
	}
	return float64(inter) / float64(len(x)+len(y)-inter)
}

// collapseNearDuplicates keeps, of each group of near-duplicate titles,
// the candidate that ranks first (pinned, then by score, newer, ID) and
// tells it of each one dropped. The order of the kept ones is the input's.
func collapseNearDuplicates[C any](cands []C, key func(C) (Article, float64), drop func(kept *C, dup Article)) []C {
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		ai, si := key(cands[order[i]])
		aj, sj := key(cands[order[j]])
		if ai.Pinned != aj.Pinned {
			return ai.Pinned
		}
		if si != sj {
			return si > sj
		}
		if !ai.Published.Equal(aj.Published) {
			return ai.Published.After(aj.Published)
		}
		return ai.ID < aj.ID
	})
	words := make([]map[string]bool, len(cands))
	for i, c := range cands {
		a, _ := key(c)
		words[i] = titleWords(a.Title)
	}
	dropped := make([]bool, len(cands))
	var kept []int
	for _, i := range order {
		a, _ := key(cands[i])
		for _, k := range kept {
			if jaccard(words[i], words[k]) >= DuplicateThreshold {
				dropped[i] = true
				drop(&cands[k], a)
				break
			}
		}
		if !dropped[i] {
			kept = append(kept, i)
		}
	}
	out := cands[:0:0]
	for i, c := range cands {
		if !dropped[i] {
			out = append(out, c)
		}
	}
	return out
}

func dupReason(dups []Article) string {
	if len(dups) == 0 {
		return ""
	}
	var parts []string
	for _, d := range dups {
		p := fmt.Sprintf("%q", d.Title)
		if d.Source != "" {
			p += " from " + d.Source
		}
		parts = append(parts, p)
	}
	return "; kept over its near-duplicate " + strings.Join(parts, ", ") + " (ranked lower)"
}
