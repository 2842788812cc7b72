package boltstore

import (
	"slices"

	"newsdigest/subscribers"
)

func equalStrings(a, b []string) bool {
	return slices.Equal(a, b)
}

// listNames returns the names of sub's lists, sorted.
func listNames(sub subscribers.Subscriber) []string {
	var out []string
	for name := range sub.Lists {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// emails returns the addresses of subs in order.
func emails(subs []subscribers.Subscriber) []string {
	var out []string
	for _, s := range subs {
		out = append(out, s.Email)
	}
	return out
}
