package main

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// globals are the flags every command takes.
type globals struct {
	config string
	db     string
	json   bool
}

// command is one sub-command's flag set, with the global flags on it.
type command struct {
	name  string
	usage string // one line: arguments
	help  string // longer description
	fs    *flag.FlagSet
	g     *globals
}

func newCommand(g *globals, name, usage, help string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.config, "config", g.config, "config `FILE` (default newsdigest.toml if present)")
	fs.StringVar(&g.db, "db", g.db, "database `FILE` (default newsdigest.db)")
	fs.BoolVar(&g.json, "json", g.json, "machine-readable JSON output")
	return &command{name: name, usage: usage, help: help, fs: fs, g: g}
}

// errHelp is returned by parse when the user asked for --help; the usage
// has been printed.
var errHelp = flag.ErrHelp

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// parse parses args, allowing flags before, between and after positional
// arguments ("subscribers show a@b.org --json"). "--" ends flags.
func (c *command) parse(args []string, out io.Writer) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := c.fs.Lookup(name)
		if f == nil {
			continue // Parse reports it
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := c.fs.Parse(flags); err != nil {
		if err == flag.ErrHelp {
			c.printUsage(out)
			return nil, errHelp
		}
		return nil, usageError{fmt.Sprintf("%s: %v (see newsdigest %s --help)", c.name, err, c.name)}
	}
	return pos, nil
}

func (c *command) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: newsdigest %s %s\n\n", c.name, c.usage)
	if c.help != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintln(w, "Flags:")
	// As the usage line spells them (--flag), not as flag.PrintDefaults
	// does (-flag); the parser takes both.
	c.fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "false", "0", "0s", "[]":
		default:
			if reflect.TypeOf(f.Value).String() == "*flag.stringValue" {
				fmt.Fprintf(w, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(w, " (default %v)", f.DefValue)
			}
		}
		fmt.Fprintln(w)
	})
}

// parseArgs parses args (see parse) and checks that between min and max
// positional arguments remain (max < 0: no upper bound).
func (c *command) parseArgs(args []string, out io.Writer, min, max int) ([]string, error) {
	pos, err := c.parse(args, out)
	if err != nil {
		return nil, err
	}
	return pos, c.args(pos, min, max)
}

// args checks the number of positional arguments.
func (c *command) args(pos []string, min, max int) error {
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return usageError{fmt.Sprintf("usage: newsdigest %s %s", c.name, c.usage)}
	}
	return nil
}

// strings is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
