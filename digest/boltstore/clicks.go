package boltstore

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
	"newsdigest/subscribers"
)

// bucketClicks holds one nested bucket per edition ID, mapping article IDs
// to their click count (8 bytes, big-endian). It is created on the first
// click, so older files need no migration.
var bucketClicks = []byte("clicks")

// RecordClick counts one click on the story articleID of the edition
// editionID, and adds it to the article's popularity (Article.Clicks),
// in one transaction. The edition must exist and hold the story (else an
// error wrapping ErrNotFound); the article may have been deleted since,
// and then only the edition's count moves. It returns the edition's new
// count for the story.
func (s *Store) RecordClick(editionID, articleID string) (int64, error) {
	var n int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		ed, err := getEdition(tx, editionID)
		if err != nil {
			return err
		}
		if !hasStory(ed, articleID) {
			return notFound("story %q in edition %s", articleID, editionID)
		}
		root, err := tx.CreateBucketIfNotExists(bucketClicks)
		if err != nil {
			return fmt.Errorf("boltstore: clicks: %w", err)
		}
		b, err := root.CreateBucketIfNotExists([]byte(editionID))
		if err != nil {
			return fmt.Errorf("boltstore: clicks of %s: %w", editionID, err)
		}
		n = readCount(b.Get([]byte(articleID))) + 1
		if err := b.Put([]byte(articleID), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return fmt.Errorf("boltstore: clicks of %s: %w", editionID, err)
		}
		arts := tx.Bucket(bucketArticles)
		var a digest.Article
		found, err := getJSON(arts, []byte(articleID), &a)
		if err != nil || !found {
			return err
		}
		a.Clicks++
		return putJSON(arts, []byte(articleID), a)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func hasStory(ed digest.Edition, articleID string) bool {
	_, ok := ed.Story(articleID) // recipients' own picks come from the pool
	return ok
}

func readCount(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// EditionClicks returns the clicks counted for each story of the edition
// (article ID → clicks; stories never clicked are absent).
func (s *Store) EditionClicks(editionID string) (map[string]int64, error) {
	out := make(map[string]int64)
	err := s.db.View(func(tx *bolt.Tx) error {
		if _, err := getEdition(tx, editionID); err != nil {
			return err
		}
		root := tx.Bucket(bucketClicks)
		if root == nil {
			return nil
		}
		b := root.Bucket([]byte(editionID))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = readCount(v)
			return nil
		})
	})
	return out, err
}

// EditionUnsubscribes counts the unsubscribes attributed to an edition:
// recipients it was sent to who are now unsubscribed from its list, and
// whose unsubscribe happened after the edition was created and before
// until (the next edition of the list; zero: no end). A subscriber who
// resubscribed since, or was deleted, is no longer counted.
func (s *Store) EditionUnsubscribes(ed digest.Edition, until time.Time) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		lb, err := ledger(tx, ed.ID)
		if err != nil || lb.records == nil {
			return err
		}
		return lb.records.ForEach(func(k, v []byte) error {
			st, err := rowStatus(v)
			if err != nil {
				return fmt.Errorf("boltstore: decode delivery %q of %s: %w", k, ed.ID, err)
			}
			if st != digest.DeliverySent {
				return nil
			}
			sub, found, err := getSubscriber(tx, string(k))
			if err != nil || !found {
				return err
			}
			m := sub.Lists[ed.List]
			if m.Status == subscribers.Unsubscribed && !m.Since.Before(ed.Created) && (until.IsZero() || m.Since.Before(until)) {
				n++
			}
			return nil
		})
	})
	return n, err
}
