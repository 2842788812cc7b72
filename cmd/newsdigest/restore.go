package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"newsdigest/digest/boltstore"
)

func runRestore(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "restore", "FILE [--yes]",
		`Replace the database with the backup FILE. FILE is checked first (a
newsdigest database of a schema this version reads, passing bbolt's
consistency check). Refused while a process (the daemon) holds the
database: stop it first. The database being replaced is kept beside it as
DB.before-restore-TIME. Asks first unless --yes.`)
	yes := c.fs.Bool("yes", false, "do not ask for confirmation")
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	src := pos[0]
	if err := m.loadConfig(); err != nil {
		return err
	}
	dst := m.cfg.DB
	if sameFile(src, dst) {
		return usageError{fmt.Sprintf("restore: %s is the database itself", src)}
	}
	if err := verifyDB(src); err != nil {
		return fmt.Errorf("restore: %s is not a good backup, nothing changed: %w", src, err)
	}
	_, statErr := os.Stat(dst)
	exists := statErr == nil
	if exists {
		// Hold the database while replacing it: a running daemon makes
		// this fail, and no daemon can start meanwhile.
		st, err := boltstore.Open(dst, boltstore.Options{Timeout: -1, ReadOnly: true})
		switch {
		case errors.Is(err, boltstore.ErrLocked):
			return fmt.Errorf("restore: %s is held by another process (is \"newsdigest serve\" running? stop it first): %w", dst, err)
		case err == nil:
			defer st.Close()
		default:
			fmt.Fprintf(m.Stderr, "restore: the current database cannot be opened (%v); replacing it anyway\n", err)
		}
		if !*yes {
			ok, err := m.confirm(fmt.Sprintf("Replace %s with %s?", dst, src))
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("restore: cancelled")
			}
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".restore-*")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(tmp.Name())
	in, err := os.Open(src)
	if err != nil {
		tmp.Close()
		return fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(tmp, in)
	in.Close()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err != nil {
		return fmt.Errorf("restore: copying %s: %w", src, err)
	}
	if err := verifyDB(tmp.Name()); err != nil {
		return fmt.Errorf("restore: the copy of %s is not good, nothing changed: %w", src, err)
	}
	kept := ""
	if exists {
		kept = dst + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Link(dst, kept); err != nil {
			return fmt.Errorf("restore: keeping the current database as %s: %w", kept, err)
		}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	syncDir(filepath.Dir(dst))
	if m.g.json {
		return m.printJSON(map[string]any{"restored": src, "db": dst, "previous": kept})
	}
	fmt.Fprintf(m.Stdout, "restore: %s now holds the backup %s", dst, src)
	if kept != "" {
		fmt.Fprintf(m.Stdout, "; the previous database is kept as %s", kept)
	}
	fmt.Fprintln(m.Stdout)
	return nil
}
