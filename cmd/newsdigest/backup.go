package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"newsdigest/digest/boltstore"
)

func runBackup(_ context.Context, m *Main, args []string) error {
	c := newCommand(&m.g, "backup", "FILE",
		`Write a consistent copy of the database to FILE while it stays in use (a
hot backup through a bbolt read transaction): directly when no process
holds the file, else through the admin API of the daemon that does. The
copy is checked (schema and bbolt's consistency check) before it replaces
FILE, so FILE is either the old file or a good copy.`)
	pos, err := c.parseArgs(args, m.Stdout, 1, 1)
	if err != nil {
		return err
	}
	dst := pos[0]
	if err := m.loadConfig(); err != nil {
		return err
	}
	if sameFile(dst, m.cfg.DB) {
		return usageError{fmt.Sprintf("backup: %s is the database itself; name another file", dst)}
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename it is gone already
	via := "directly"
	n, err := m.backupTo(tmp, &via)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	if err := verifyDB(tmp.Name()); err != nil {
		return fmt.Errorf("backup to %s: the copy is not good, %s was left as it was: %w", dst, dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	syncDir(filepath.Dir(dst))
	if m.g.json {
		return m.printJSON(map[string]any{"file": dst, "bytes": n, "via": via})
	}
	fmt.Fprintf(m.Stdout, "backup: %d bytes of %s written to %s (%s; the copy passed its consistency check)\n", n, m.cfg.DB, dst, via)
	return nil
}

// backupTo writes the copy from the store, or from the daemon holding it.
func (m *Main) backupTo(w io.Writer, via *string) (int64, error) {
	st, err := boltstore.Open(m.cfg.DB, boltstore.Options{Timeout: -1, ReadOnly: true})
	if err == nil {
		defer st.Close()
		return st.Backup(w)
	}
	if !errors.Is(err, boltstore.ErrLocked) {
		return 0, err
	}
	cl, apiErr := m.adminClient()
	if apiErr != nil {
		return 0, fmt.Errorf("%w; and the daemon's admin API cannot be used: %v", err, apiErr)
	}
	*via = "through the daemon's admin API at " + cl.BaseURL
	return cl.Backup(w)
}

// verifyDB opens path read-only (which checks the schema version) and runs
// bbolt's consistency check.
func verifyDB(path string) error {
	st, err := boltstore.Open(path, boltstore.Options{Timeout: -1, ReadOnly: true})
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Check()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
