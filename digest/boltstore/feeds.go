package boltstore

import (
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
)

// PutFeed creates or replaces the feed with f's URL. The ID is always
// digest.FeedID(f.URL); a different non-empty f.ID is refused. A zero Added
// keeps the stored one, or is set to the clock's now.
func (s *Store) PutFeed(f digest.Feed) error {
	f.URL = strings.TrimSpace(f.URL)
	if f.URL == "" {
		return fmt.Errorf("boltstore: put feed: URL or path is required")
	}
	id := digest.FeedID(f.URL)
	if f.ID != "" && f.ID != id {
		return fmt.Errorf("boltstore: put feed %s: id %q does not match the URL (want %s)", f.URL, f.ID, id)
	}
	f.ID = id
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFeeds)
		if f.Added.IsZero() {
			var old digest.Feed
			found, err := getJSON(b, []byte(id), &old)
			if err != nil {
				return err
			}
			if found && !old.Added.IsZero() {
				f.Added = old.Added
			} else {
				f.Added = s.now()
			}
		}
		if err := putJSON(b, []byte(id), f); err != nil {
			return fmt.Errorf("boltstore: put feed %s: %w", f.URL, err)
		}
		return nil
	})
}

// feedKey returns the stored key for a feed ID or URL, or nil.
func feedKey(b *bolt.Bucket, idOrURL string) []byte {
	if idOrURL == "" {
		return nil
	}
	if b.Get([]byte(idOrURL)) != nil {
		return []byte(idOrURL)
	}
	if id := digest.FeedID(strings.TrimSpace(idOrURL)); b.Get([]byte(id)) != nil {
		return []byte(id)
	}
	return nil
}

// GetFeed returns the feed with the given ID or URL, or an error wrapping
// ErrNotFound.
func (s *Store) GetFeed(idOrURL string) (digest.Feed, error) {
	var f digest.Feed
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFeeds)
		k := feedKey(b, idOrURL)
		if k == nil {
			return notFound("feed %q", idOrURL)
		}
		_, err := getJSON(b, k, &f)
		return err
	})
	return f, err
}

// Feeds returns every feed, oldest added first; ties by URL.
func (s *Store) Feeds() ([]digest.Feed, error) {
	var out []digest.Feed
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFeeds)
		return b.ForEach(func(k, _ []byte) error {
			var f digest.Feed
			if _, err := getJSON(b, k, &f); err != nil {
				return err
			}
			out = append(out, f)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(x, y digest.Feed) int {
		if c := x.Added.Compare(y.Added); c != 0 {
			return c
		}
		return strings.Compare(x.URL, y.URL)
	})
	return out, nil
}

// DeleteFeed removes the feed with the given ID or URL, or returns an error
// wrapping ErrNotFound. Its articles stay.
func (s *Store) DeleteFeed(idOrURL string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFeeds)
		k := feedKey(b, idOrURL)
		if k == nil {
			return notFound("feed %q", idOrURL)
		}
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("boltstore: delete feed %s: %w", idOrURL, err)
		}
		return nil
	})
}
