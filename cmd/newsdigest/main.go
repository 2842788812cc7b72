// Command newsdigest turns a news site's articles into email digests and
// sends them to the site's subscribers. See README.md for every command.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"newsdigest/digest/adminapi"
	"newsdigest/digest/boltstore"
	"newsdigest/subscribers"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ(), Stdin: os.Stdin}
	code := m.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Main is the program: its streams and environment, so that tests can run
// it in-process.
type Main struct {
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Environ []string

	g      globals
	create bool // the command may create the database file
	cfg    Config
	store  *boltstore.Store
	admin  adminapi.Service // the store or the daemon's admin API; see openAdmin
	log    *slog.Logger
}

type runner func(ctx context.Context, m *Main, args []string) error

// commands maps each top-level command to its runner and one line of help.
var commands = map[string]struct {
	run  runner
	help string
}{
	"demo":        {runDemo, "send a sample digest to an in-process SMTP server, end to end"},
	"send":        {runSend, "build and send a list's edition now"},
	"preview":     {runPreview, "render a list's edition without sending, with reasons"},
	"check":       {runCheck, "check a message or a list's edition against the email standard"},
	"serve":       {runServe, "run the daemon: subscriber pages and the admin API"},
	"subscribers": {runSubscribers, "add, remove, show, list, import, export subscribers"},
	"lists":       {runLists, "add, set, list, show, remove lists (newsletters)"},
	"feeds":       {runFeeds, "add, list, remove and fetch feeds"},
	"articles":    {runArticles, "import, list, pin, boost, exclude articles"},
	"editions":    {runEditions, "list, show, pause and resume editions"},
	"bounces":     {runBounces, "process saved bounce and complaint messages"},
	"backup":      {runBackup, "write a consistent copy of the database (hot, also while serve runs)"},
	"restore":     {runRestore, "replace the database with a checked backup (not while serve runs)"},
	"config":      {runConfig, "check the configuration"},
	"version":     {runVersion, "print the version"},
}

// Run runs one command line and returns the exit status: 0 success, 1
// failure, 2 a usage mistake.
func (m *Main) Run(ctx context.Context, args []string) int {
	defer m.Close()
	if len(args) >= 2 && args[0] == "help" {
		args = append(args[1:], "--help") // "help send" = "send --help"
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		m.usage(m.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	args = hoistGlobals(args)
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(m.Stderr, "newsdigest: unknown command %q\n\n", args[0])
		m.usage(m.Stderr)
		return 2
	}
	err := cmd.run(ctx, m, args[1:])
	var uerr usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &uerr):
		fmt.Fprintf(m.Stderr, "newsdigest: %v\n", err)
		return 2
	default:
		fmt.Fprintf(m.Stderr, "newsdigest: %v\n", err)
		return 1
	}
}

func (m *Main) usage(w io.Writer) {
	fmt.Fprint(w, "newsdigest turns a news site's articles into email digests.\n\nUsage: newsdigest COMMAND [arguments] [--config FILE] [--db FILE] [--json]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].help)
	}
	fmt.Fprint(w, "\nRun 'newsdigest COMMAND --help' for a command's arguments and flags.\n")
}

// Close releases the store.
func (m *Main) Close() {
	if m.store != nil {
		m.store.Close()
		m.store = nil
	}
	m.admin = nil
}

// loadConfig reads the config file (the --config flag, else
// newsdigest.toml if present) and the environment, then the --db flag.
func (m *Main) loadConfig() error {
	path, mustExist := m.g.config, true
	if path == "" {
		path, mustExist = "newsdigest.toml", false
	}
	cfg, err := LoadConfig(path, mustExist, m.Environ)
	if err != nil {
		return err
	}
	if m.g.db != "" {
		cfg.DB = m.g.db
	}
	m.cfg = cfg
	m.log = newLogger(m.Stderr, cfg.Log)
	return nil
}

// open loads the config and opens the store.
func (m *Main) open() error {
	if err := m.loadConfig(); err != nil {
		return err
	}
	if err := m.checkDBExists(); err != nil {
		return err
	}
	st, err := boltstore.Open(m.cfg.DB, boltstore.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	m.store = st
	return nil
}

// listName picks the list a command works on: the --list flag, else the
// only list there is.
func (m *Main) listName(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	var ls []subscribers.List
	var err error
	if m.admin != nil {
		ls, err = m.admin.Lists()
	} else {
		ls, err = m.store.Lists()
	}
	if err != nil {
		return "", err
	}
	switch len(ls) {
	case 0:
		return "", errors.New("there are no lists yet: create one with 'newsdigest lists add NAME --from ADDR'")
	case 1:
		return ls[0].Name, nil
	}
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return "", usageError{"several lists exist (" + strings.Join(names, ", ") + "): choose one with --list"}
}

// newLogger makes the slog logger the config asks for.
func newLogger(w io.Writer, c LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// checkDBExists refuses to create a database as a side effect of a command
// that only reads or changes existing data: run from the wrong folder, it
// would otherwise "succeed" on a new, empty file. Commands that start a
// database (lists add, subscribers add|import, feeds add, articles import,
// serve) set m.create first.
func (m *Main) checkDBExists() error {
	if m.create {
		return nil
	}
	if _, err := os.Stat(m.cfg.DB); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no database at %s: start one with 'newsdigest lists add NAME --from ADDR', or name it with --db or NEWSDIGEST_DB", m.cfg.DB)
	}
	return nil
}

// hoistGlobals moves global flags written before the command name
// ("newsdigest --json lists list") after it, where the command's flag set
// reads them.
func hoistGlobals(args []string) []string {
	var globals []string
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-" && args[i] != "--" {
		name := strings.TrimLeft(args[i], "-")
		globals = append(globals, args[i])
		i++
		if (name == "config" || name == "db") && i < len(args) {
			globals = append(globals, args[i])
			i++
		}
		if name == "help" || name == "h" {
			return args
		}
	}
	if len(globals) == 0 || i == len(args) {
		return args
	}
	return append(append([]string{args[i]}, args[i+1:]...), globals...)
}
