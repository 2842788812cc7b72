package main

import (
	"flag"
	"io"
	"log/slog"
	"sort"

	"newsdigest/digest"
	"newsdigest/digest/delivery"
	"newsdigest/subscribers"
)

type flagT = flag.Flag

func sortStrings(s []string) []string { sort.Strings(s); return s }

func policyOf(l subscribers.List) digest.Policy { return delivery.PolicyOf(l) }

func newQuietLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
