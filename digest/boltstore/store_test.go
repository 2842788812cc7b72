package boltstore

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var t0 = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)

// mustOpen opens a new store in a temporary directory with a settable clock
// at t0, and checks and closes it when the test ends.
func mustOpen(t testing.TB) (*Store, *testClock) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "newsdigest.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: t0}
	s.Clock = clock
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Error(err)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, clock
}

func TestOpen(t *testing.T) {
	t.Run("CreatesFileWithSchema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "newsdigest.db")
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.Path(), path; got != want {
			t.Errorf("Path() = %q, want %q", got, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Errorf("file mode = %v, want %v", got, want)
		}
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.View(func(tx *bolt.Tx) error {
			if got, want := string(tx.Bucket(bucketMeta).Get(keySchema)), "1"; got != want {
				t.Errorf("schema = %q, want %q", got, want)
			}
			for _, name := range allBuckets {
				if tx.Bucket(name) == nil {
					t.Errorf("bucket %s missing", name)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ReopenKeepsData", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "newsdigest.db")
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Suppress("a@example.org", "manual", t0); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, ok, err := s.Suppressed("a@example.org"); err != nil || !ok {
			t.Errorf("Suppressed after reopen = %v, %v; want true, nil", ok, err)
		}
	})

	t.Run("ErrSchemaNewer", func(t *testing.T) {
		path := writeRawDB(t, func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return b.Put(keySchema, []byte("7"))
		})
		_, err := Open(path, Options{})
		if !errors.Is(err, ErrSchema) {
			t.Fatalf("Open = %v, want ErrSchema", err)
		}
		want := "boltstore: " + path + " has schema version 7, this newsdigest understands 1: upgrade newsdigest"
		if got := err.Error(); got != want {
			t.Errorf("error = %q\nwant    %q", got, want)
		}
	})

	t.Run("ErrSchemaUnparsable", func(t *testing.T) {
		path := writeRawDB(t, func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return b.Put(keySchema, []byte("one"))
		})
		_, err := Open(path, Options{})
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), `"one"`) {
			t.Fatalf("Open = %v, want ErrSchema naming the bad version", err)
		}
	})

	t.Run("ErrSchemaForeignBoltFile", func(t *testing.T) {
		path := writeRawDB(t, func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("widgets"))
			return err
		})
		_, err := Open(path, Options{})
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "not a newsdigest database") {
			t.Fatalf("Open = %v, want ErrSchema saying it is not ours", err)
		}
		// The foreign file was not modified.
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		_ = db.View(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketMeta) != nil {
				t.Error("Open created a meta bucket in a foreign file")
			}
			return nil
		})
	})

	t.Run("NotABoltFile", func(t *testing.T) {
		for _, size := range []int{100, 64 << 10} {
			path := filepath.Join(t.TempDir(), "notes.txt")
			if err := os.WriteFile(path, bytes.Repeat([]byte("not a database\n"), size/15+1), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, Options{})
			if err == nil {
				t.Fatalf("size %d: Open succeeded on a text file", size)
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "not a newsdigest database") {
				t.Errorf("size %d: error = %q, want it to name the path and say what is wrong", size, msg)
			}
		}
	})

	t.Run("ReadOnly", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "newsdigest.db")
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Suppress("a@example.org", "manual", t0); err != nil {
			t.Fatal(err)
		}
		s.Close()

		ro, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		if _, ok, err := ro.Suppressed("a@example.org"); err != nil || !ok {
			t.Errorf("read-only Suppressed = %v, %v; want true, nil", ok, err)
		}
		if err := ro.Suppress("b@example.org", "manual", t0); err == nil {
			t.Error("write to a read-only store succeeded")
		}
		// A second reader shares the file.
		ro2, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("second read-only open: %v", err)
		}
		ro2.Close()
	})

	t.Run("ReadOnlyMissingFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.db")
		_, err := Open(path, Options{ReadOnly: true})
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Open = %v, want a not-exist error naming the path", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Error("read-only Open created the file")
		}
	})
}

// writeRawDB makes a bbolt file with fn, bypassing Open.
func writeRawDB(t *testing.T, fn func(*bolt.Tx) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "newsdigest.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenLocked(t *testing.T) {
	t.Run("SameProcess", func(t *testing.T) {
		// flock locks belong to the open file description, so a second
		// Open in the same process conflicts like another process would.
		path := filepath.Join(t.TempDir(), "newsdigest.db")
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Open(path, Options{Timeout: 100 * time.Millisecond})
		assertLocked(t, err, path)
		_, err = Open(path, Options{ReadOnly: true, Timeout: -1})
		assertLocked(t, err, path)

		s.Close()
		s2, err := Open(path, Options{Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("Open after Close: %v", err)
		}
		s2.Close()
	})

	t.Run("OtherProcess", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "newsdigest.db")
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldStore$")
		cmd.Env = append(os.Environ(), "BOLTSTORE_HELPER_DB="+path)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			stdin.Close()
			cmd.Wait()
			t.Fatalf("helper said %q, %v; want ready", line, err)
		}

		_, err = Open(path, Options{Timeout: 100 * time.Millisecond})
		assertLocked(t, err, path)

		stdin.Close() // the helper closes the store and exits
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("Open after the helper exited: %v", err)
		}
		s.Close()
	})
}

func assertLocked(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open = %v, want ErrLocked", err)
	}
	want := "boltstore: " + path + ` is in use by another process (is "newsdigest serve" running?)`
	if got := err.Error(); got != want {
		t.Errorf("error = %q\nwant    %q", got, want)
	}
}

// TestHelperHoldStore is not a test: TestOpenLocked runs the test binary
// with BOLTSTORE_HELPER_DB set to hold that store open in another process
// until its standard input closes.
func TestHelperHoldStore(t *testing.T) {
	path := os.Getenv("BOLTSTORE_HELPER_DB")
	if path == "" {
		t.Skip("helper process for TestOpenLocked")
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until EOF
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBackup(t *testing.T) {
	s, _ := mustOpen(t)
	if _, _, err := s.UpsertArticles([]digest.Article{{GUID: "g1", Link: "https://example.org/a", Title: "A"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress("a@example.org", "manual", t0); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, int64(buf.Len()); got != want {
		t.Errorf("Backup returned %d bytes, wrote %d", got, want)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open backup: %v", err)
	}
	defer b.Close()
	if err := b.Check(); err != nil {
		t.Errorf("backup Check: %v", err)
	}
	a, err := b.GetArticle(digest.ArticleID("g1", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Title, "A"; got != want {
		t.Errorf("backup article title = %q, want %q", got, want)
	}
	if _, ok, _ := b.Suppressed("a@example.org"); !ok {
		t.Error("backup lacks the suppression")
	}
}
