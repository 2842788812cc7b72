package boltstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"newsdigest/digest"
)

// SchemaVersion is the layout version this code reads and writes. Open
// refuses files written with a higher (or unreadable) version.
const SchemaVersion = 1

// DefaultTimeout is how long Open waits for a file that another process
// holds when Options.Timeout is zero.
const DefaultTimeout = time.Second

// Errors. Each is wrapped by the errors that methods return, with a message
// that names the thing concerned; test with errors.Is.
var (
	// ErrNotFound is returned when the list, subscriber, article, feed or
	// edition asked for does not exist (also by deletes and updates of a
	// missing record).
	ErrNotFound = errors.New("not found")

	// ErrLocked is returned by Open when another process holds the file
	// and did not release it within Options.Timeout.
	ErrLocked = errors.New("database in use by another process")

	// ErrSchema is returned by Open when the file's schema version is
	// newer than SchemaVersion or unreadable, or when the file is a bbolt
	// file that newsdigest did not create.
	ErrSchema = errors.New("unsupported schema")

	// ErrExists is returned by AddSubscriber when the address is already
	// subscribed, and by PutSubscriber when the given ID belongs to another
	// address.
	ErrExists = errors.New("already exists")

	// ErrAmbiguous is returned by GetArticle and UpdateArticle when an ID
	// prefix matches more than one article.
	ErrAmbiguous = errors.New("ambiguous prefix")
)

// Bucket names.
var (
	bucketMeta          = []byte("meta")
	bucketLists         = []byte("lists")
	bucketSubscribers   = []byte("subscribers")
	bucketSubscriberIDs = []byte("subscriber_ids")
	bucketArticles      = []byte("articles")
	bucketArticleGUIDs  = []byte("article_guids")
	bucketArticleLinks  = []byte("article_links")
	bucketFeeds         = []byte("feeds")
	bucketEditions      = []byte("editions")
	bucketDeliveries    = []byte("deliveries")
	bucketPending       = []byte("pending")
	bucketSuppressions  = []byte("suppressions")

	allBuckets = [][]byte{
		bucketMeta, bucketLists, bucketSubscribers, bucketSubscriberIDs,
		bucketArticles, bucketArticleGUIDs, bucketArticleLinks, bucketFeeds,
		bucketEditions, bucketDeliveries, bucketPending, bucketSuppressions,
	}

	keySchema = []byte("schema")
)

// sequentialFill is the bbolt FillPercent of buckets written in key order
// (ledger rows, story history): pages split when 90 % full rather than
// half, so a send's records take about half the pages.
const sequentialFill = 0.9

// Options tune Open.
type Options struct {
	// Timeout is how long Open waits for a file another process holds
	// before it fails with ErrLocked. Zero means DefaultTimeout; a
	// negative value means not to wait at all.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock, for reading only: writes
	// fail. The file must exist and hold a newsdigest database. Several
	// read-only processes may share a file, but not with a writer.
	ReadOnly bool
	// NoSync skips the fsync of each commit: a crash may lose recent
	// commits. Only for tests that commit a lot and test no crash.
	NoSync bool
}

// Store is a newsdigest database in one bbolt file. Its methods are safe
// for concurrent use; bbolt serializes writers.
type Store struct {
	// Clock stamps Created, Updated, Ingested and similar times that the
	// caller left zero. Nil means digest.SystemClock{}. Set it before use.
	Clock digest.Clock

	db   *bolt.DB
	path string

	lastEdition editionListCache // see editionList
}

// Open opens the database at path, creating it (mode 0600) with its buckets
// and schema version when it does not exist. It fails with an error wrapping
// ErrLocked when another process holds the file, and with one wrapping
// ErrSchema when the file was written by a newer newsdigest or is a bbolt
// file of another program.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		timeout = time.Nanosecond // bbolt: fail at the first busy attempt
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if err == nil && opts.NoSync {
		db.NoSync = true
	}
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, wrapf(ErrLocked, "boltstore: %s is in use by another process (is \"newsdigest serve\" running?)", path)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
			errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
			return nil, fmt.Errorf("boltstore: %s is not a newsdigest database (not a bbolt file, or damaged): %w", path, err)
		case errors.Is(err, os.ErrNotExist) && opts.ReadOnly:
			return nil, fmt.Errorf("boltstore: %s does not exist (a read-only open does not create it): %w", path, err)
		}
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if opts.ReadOnly {
		err = db.View(func(tx *bolt.Tx) error { return s.checkSchema(tx, false) })
	} else {
		err = db.Update(func(tx *bolt.Tx) error { return s.checkSchema(tx, true) })
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// checkSchema verifies the schema version and the buckets, creating them in
// a new file when init is true.
func (s *Store) checkSchema(tx *bolt.Tx, init bool) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		var other []string
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			other = append(other, string(name))
			return nil
		})
		if len(other) > 0 {
			return wrapf(ErrSchema, "boltstore: %s is a bbolt file but not a newsdigest database (no schema version; it has buckets %q)", s.path, other)
		}
		if !init {
			return wrapf(ErrSchema, "boltstore: %s is an empty bbolt file, not yet a newsdigest database (open it once for writing)", s.path)
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("boltstore: %s: create bucket %s: %w", s.path, name, err)
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return fmt.Errorf("boltstore: %s: write schema version: %w", s.path, err)
		}
		return nil
	}
	raw := meta.Get(keySchema)
	v, err := strconv.Atoi(string(raw))
	switch {
	case raw == nil:
		return wrapf(ErrSchema, "boltstore: %s has no schema version: not a newsdigest database, or damaged", s.path)
	case err != nil || v < 1:
		return wrapf(ErrSchema, "boltstore: %s has an unreadable schema version %q: not a newsdigest database, or damaged", s.path, raw)
	case v > SchemaVersion:
		return wrapf(ErrSchema, "boltstore: %s has schema version %d, this newsdigest understands %d: upgrade newsdigest", s.path, v, SchemaVersion)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) != nil {
			continue
		}
		if !init {
			return wrapf(ErrSchema, "boltstore: %s lacks bucket %s: damaged, or needs a writable open to complete it", s.path, name)
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("boltstore: %s: create bucket %s: %w", s.path, name, err)
		}
	}
	if init {
		if err := migrateHistory(tx); err != nil {
			return fmt.Errorf("boltstore: %s: %w", s.path, err)
		}
	}
	return nil
}

// Close releases the file. The Store must not be used afterwards.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close %s: %w", s.path, err)
	}
	return nil
}

// Path returns the path of the database file.
func (s *Store) Path() string { return s.path }

// Check verifies the consistency of the whole file (bbolt's Tx.Check) in a
// read transaction, and returns every problem found joined into one error,
// or nil.
func (s *Store) Check() error {
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: check %s: %w", s.path, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("boltstore: %s failed its consistency check (%d problems): %w", s.path, len(errs), errors.Join(errs...))
	}
	return nil
}

// Backup writes a consistent copy of the whole database to w while the
// store stays in use (a hot backup through a read transaction) and returns
// the number of bytes written. The copy is a bbolt file that Open accepts.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("boltstore: backup of %s: %w", s.path, err)
	}
	return n, nil
}

// now returns the store clock's time.
func (s *Store) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}

// sentinelError carries a message of its own and wraps a sentinel (and any
// cause formatted into the message with %w).
type sentinelError struct {
	sentinel error
	err      error
}

func (e *sentinelError) Error() string   { return e.err.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }

// wrapf formats a message as fmt.Errorf does and makes the result wrap
// sentinel without adding its text to the message.
func wrapf(sentinel error, format string, args ...any) error {
	return &sentinelError{sentinel: sentinel, err: fmt.Errorf(format, args...)}
}

// notFound returns an error wrapping ErrNotFound: `boltstore: <what> not found`.
func notFound(format string, args ...any) error {
	return wrapf(ErrNotFound, "boltstore: "+format+" not found", args...)
}

// getJSON decodes the value at key into v and reports whether it existed.
// Decoding copies, so v does not refer to bbolt's memory.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("boltstore: decode record %q: %w", key, err)
	}
	return true, nil
}

// putJSON encodes v and stores it at key.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("boltstore: encode %s: %w", key, err)
	}
	if err := b.Put(key, raw); err != nil {
		return fmt.Errorf("boltstore: write %s: %w", key, err)
	}
	return nil
}

// jsonKey returns how key is written as an object key in the encoding/json
// output: a quick filter for records that may mention it.
func jsonKey(key string) []byte {
	b, _ := json.Marshal(key) // a string always encodes
	return append(b, ':')
}
