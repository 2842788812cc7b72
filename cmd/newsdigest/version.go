package main

import (
	"context"
	"fmt"
	"runtime"
)

func runVersion(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "version", "", "Print the version.")
	if _, err := c.parse(args, m.Stdout); err != nil {
		return err
	}
	if m.g.json {
		return m.printJSON(map[string]string{"version": version, "go": runtime.Version()})
	}
	fmt.Fprintf(m.Stdout, "newsdigest %s (%s)\n", version, runtime.Version())
	return nil
}
