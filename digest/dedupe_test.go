package digest

import (
	"slices"
	"strings"
	"testing"
)

func TestNearDuplicate(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"Harbour reopens after storm", "Harbour Reopens After Storm!", true},
		{"Harbour reopens after the storm", "Harbour reopens after storm", true}, // 4/5
		{"Harbour reopens after storm", "Harbour closes after storm", false},     // 3/5
		{"Council votes on budget", "Budget: council votes on", true},
		{"Storm", "Storm", true},
		{"", "", false},
		{"…", "!!!", false},
		{"Ferry strike ends", "Ferry strike begins", false},
	} {
		if got := NearDuplicate(tc.a, tc.b); got != tc.want {
			t.Errorf("NearDuplicate(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSelectCollapsesNearDuplicates(t *testing.T) {
	withTitle := func(a Article, title, source string) Article {
		a.Title, a.Source = title, source
		return a
	}
	for _, tc := range []struct {
		name       string
		arts       []Article
		top        []string
		recent     []string
		reasonOf   string // the pick whose reason must name the dropped copy
		reasonHas  string
		policy     Policy
		notInFinal string
	}{
		{
			name: "HigherScoreKept",
			arts: []Article{
				withTitle(art("a", 1, 500), "Harbour reopens after storm", "feed1"),
				withTitle(art("b", 1, 50), "Harbour Reopens After Storm", "feed2"),
				withTitle(art("c", 2, 100), "Council votes on budget", ""),
			},
			top: []string{"a", "c"}, recent: []string{}, reasonOf: "a", reasonHas: `"Harbour Reopens After Storm" from feed2`,
			policy: Policy{TopCount: 5, RecentCount: -1}, notInFinal: "b",
		},
		{
			name: "PinnedCopyWinsOverHigherScore",
			arts: []Article{
				withTitle(art("a", 1, 500), "Harbour reopens after storm", "feed1"),
				func() Article {
					a := withTitle(art("b", 1, 5), "Harbour reopens after the storm", "feed2")
					a.Pinned = true
					return a
				}(),
			},
			top: []string{"b"}, recent: []string{}, reasonOf: "b", reasonHas: `near-duplicate "Harbour reopens after storm" from feed1`,
			policy: Policy{TopCount: 5, RecentCount: -1}, notInFinal: "a",
		},
		{
			name: "DuplicateNotInRecentEither",
			arts: []Article{
				withTitle(art("a", 5, 900), "Ferry strike ends", ""),
				withTitle(art("b", 1, 0), "Ferry strike ends today", ""), // 3/4: distinct
				withTitle(art("c", 0.5, 0), "FERRY STRIKE ENDS.", ""),    // duplicate of a, lower score than a
			},
			top: []string{"a"}, recent: []string{"b"}, reasonOf: "a", reasonHas: `"FERRY STRIKE ENDS."`,
			policy: Policy{TopCount: 1, RecentCount: 5}, notInFinal: "c",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel := Select(tc.arts, tc.policy, now, nil)
			if got := ids(sel.Top); !slices.Equal(got, tc.top) {
				t.Errorf("top %v, want %v", got, tc.top)
			}
			if got := ids(sel.Recent); !slices.Equal(append([]string{}, got...), tc.recent) {
				t.Errorf("recent %v, want %v", got, tc.recent)
			}
			found := false
			for _, p := range sel.Picks() {
				if p.Article.ID == tc.notInFinal {
					t.Errorf("the dropped copy %s was picked", tc.notInFinal)
				}
				if p.Article.ID == tc.reasonOf {
					found = true
					if !strings.Contains(p.Reason, tc.reasonHas) {
						t.Errorf("reason of %s = %q, want it to contain %q", p.Article.ID, p.Reason, tc.reasonHas)
					}
				}
			}
			if !found {
				t.Errorf("%s not picked", tc.reasonOf)
			}
		})
	}
}
