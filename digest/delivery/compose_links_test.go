package delivery

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

// TestComposerLinksMatchEngine checks that the composer's recipient links
// and return path, built from parts worked out once per run, are exactly
// Engine.Recipient's and Engine.ReturnPath's.
func TestComposerLinksMatchEngine(t *testing.T) {
	signer, err := subscribers.NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	ed := digest.Edition{ID: "daily-20261127-0700", List: "daily", Slot: time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)}
	subs := []subscribers.Subscriber{
		{ID: "0123456789abcdef0123456789abcdef", Email: "a@example.org", Name: "Ann"},
		{ID: "s0123456789", Email: "b@example.org"},
		{ID: "0123456789ABCDEF0123456789ABCDEF", Email: "c@example.org"},
		{Email: "d@example.org", Name: "No ID"},
		{ID: strings.Repeat("ab", 100), Email: "e@example.org"},
	}
	n := 0
	for _, s := range []*subscribers.Signer{signer, nil} {
		for _, base := range []string{"https://news.example", "https://news.example///", "", "http://127.0.0.1:8080/site/"} {
			for _, bounce := range []string{"", "bounces@bounce.news.example", "b+x@bounce.news.example", "no-at",
				strings.Repeat("l", subscribers.VERPMaxLocal) + "@b.example", strings.Repeat("l", subscribers.VERPMaxLocal+1) + "@b.example", "a@b@c"} {
				for _, listName := range []string{"daily", "ünï"} {
					e := &Engine{Signer: s, BaseURL: base, BounceAddress: bounce}
					list := subscribers.List{Name: listName, From: "News <news@news.example>"}
					c, err := e.newComposer(list, ed)
					if err != nil {
						t.Fatal(err)
					}
					for _, sub := range subs {
						if got, want := c.recipient(sub), e.Recipient(list, sub); got != want {
							t.Errorf("signer %v, base %q, sub %q: recipient %+v, want %+v", s != nil, base, sub.ID, got, want)
						}
						got, want := c.returnPath(sub), e.ReturnPath(list, ed, sub)
						if got != want {
							t.Errorf("signer %v, bounce %q, sub %q: return path %q, want %q", s != nil, bounce, sub.ID, got, want)
						}
						if strings.Contains(got, "+") && !strings.HasPrefix(bounce, "b+") {
							n++ // a VERP address was made
						}
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no VERP return path was made: the comparison proves nothing")
	}
}
