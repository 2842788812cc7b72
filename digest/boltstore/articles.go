package boltstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
)

// minPrefix is the shortest article ID prefix GetArticle resolves.
const minPrefix = 4

// maxIndexKey is the longest GUID or canonical link used as an index key
// as it is; longer ones (hostile feeds) are indexed by their SHA-256, since
// bbolt keys are limited to 32 KiB.
const maxIndexKey = 512

// maxArticleID is the longest article ID the store accepts.
const maxArticleID = 256

// CanonicalLink returns the form of an article link used to find the same
// story under slightly different URLs: scheme and host lower-cased, the
// default port dropped, the fragment dropped, utm_* and fbclid/gclid query
// parameters dropped (the others kept in order), and a trailing slash of the
// path dropped except for the root path, which is always "/". A link that
// is not an absolute URL is returned trimmed of spaces, as it is.
func CanonicalLink(raw string) string {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return raw
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	if (scheme == "http" && strings.HasSuffix(host, ":80")) || (scheme == "https" && strings.HasSuffix(host, ":443")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	path := u.EscapedPath()
	if trimmed := strings.TrimRight(path, "/"); trimmed == "" {
		path = "/"
	} else {
		path = trimmed
	}
	var keep []string
	for _, part := range strings.Split(u.RawQuery, "&") {
		if part == "" {
			continue
		}
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		key = strings.ToLower(key)
		if strings.HasPrefix(key, "utm_") || key == "fbclid" || key == "gclid" {
			continue
		}
		keep = append(keep, part)
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	if u.User != nil {
		b.WriteString(u.User.String())
		b.WriteByte('@')
	}
	b.WriteString(host)
	b.WriteString(path)
	if len(keep) > 0 {
		b.WriteByte('?')
		b.WriteString(strings.Join(keep, "&"))
	}
	return b.String()
}

// indexKey turns a GUID or canonical link into an index key.
func indexKey(s string) []byte {
	if len(s) <= maxIndexKey {
		return []byte(s)
	}
	sum := sha256.Sum256([]byte(s))
	return []byte("#sha256:" + hex.EncodeToString(sum[:]))
}

// indexArticle records a's GUID and canonical link unless they already
// point to an article.
func indexArticle(tx *bolt.Tx, a digest.Article) error {
	put := func(b *bolt.Bucket, key string) error {
		if key == "" {
			return nil
		}
		k := indexKey(key)
		if b.Get(k) != nil {
			return nil
		}
		if err := b.Put(k, []byte(a.ID)); err != nil {
			return fmt.Errorf("boltstore: article %s: index: %w", a.ID, err)
		}
		return nil
	}
	if err := put(tx.Bucket(bucketArticleGUIDs), a.GUID); err != nil {
		return err
	}
	if a.Link == "" {
		return nil
	}
	return put(tx.Bucket(bucketArticleLinks), CanonicalLink(a.Link))
}

// findArticle returns the ID of the stored article that a is a copy of: the
// same ID, else the same GUID, else the same canonical link; "" if none.
func findArticle(tx *bolt.Tx, a digest.Article) string {
	if tx.Bucket(bucketArticles).Get([]byte(a.ID)) != nil {
		return a.ID
	}
	if a.GUID != "" {
		if id := tx.Bucket(bucketArticleGUIDs).Get(indexKey(a.GUID)); id != nil {
			return string(id)
		}
	}
	if a.Link != "" {
		if id := tx.Bucket(bucketArticleLinks).Get(indexKey(CanonicalLink(a.Link))); id != nil {
			return string(id)
		}
	}
	return ""
}

// UpsertArticles stores a batch of articles in one transaction: all of
// them or, on error, none. An article without ID gets
// digest.ArticleID(GUID, Link). An article already stored under the same
// ID, else the same GUID, else the same CanonicalLink is merged into the
// stored one with digest.Article.Merge, which keeps the stored ID; others
// are added, with Ingested set to the clock's now when zero.
func (s *Store) UpsertArticles(as []digest.Article) (added, merged int, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		added, merged = 0, 0
		b := tx.Bucket(bucketArticles)
		now := s.now()
		for i, a := range as {
			if a.ID == "" {
				if a.GUID == "" && a.Link == "" {
					return fmt.Errorf("boltstore: article %d (%.60q): no id, guid or link", i+1, a.Title)
				}
				a.ID = digest.ArticleID(a.GUID, a.Link)
			}
			if len(a.ID) > maxArticleID {
				return fmt.Errorf("boltstore: article %d: id longer than %d bytes", i+1, maxArticleID)
			}
			if id := findArticle(tx, a); id != "" {
				var old digest.Article
				if _, err := getJSON(b, []byte(id), &old); err != nil {
					return err
				}
				a = old.Merge(a)
				merged++
			} else {
				if a.Ingested.IsZero() {
					a.Ingested = now
				}
				added++
			}
			if err := putJSON(b, []byte(a.ID), a); err != nil {
				return fmt.Errorf("boltstore: article %d: %w", i+1, err)
			}
			if err := indexArticle(tx, a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return added, merged, nil
}

// resolveArticle finds the ID meant by an exact ID or a unique prefix of at
// least minPrefix characters.
func resolveArticle(tx *bolt.Tx, idOrPrefix string) (string, error) {
	b := tx.Bucket(bucketArticles)
	if idOrPrefix != "" && b.Get([]byte(idOrPrefix)) != nil {
		return idOrPrefix, nil
	}
	if len(idOrPrefix) < minPrefix {
		return "", notFound("article %q (give the ID or at least %d of its first characters)", idOrPrefix, minPrefix)
	}
	var matches []string
	c := b.Cursor()
	prefix := []byte(idOrPrefix)
	for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), idOrPrefix); k, _ = c.Next() {
		matches = append(matches, string(k))
		if len(matches) > 5 {
			break
		}
	}
	switch len(matches) {
	case 0:
		return "", notFound("article %q", idOrPrefix)
	case 1:
		return matches[0], nil
	}
	list := strings.Join(matches[:min(len(matches), 5)], ", ")
	if len(matches) > 5 {
		list += ", …"
	}
	return "", wrapf(ErrAmbiguous, "boltstore: article prefix %q is ambiguous: it matches %s; give more characters", idOrPrefix, list)
}

// GetArticle returns the article with the exact ID idOrPrefix or, failing
// that, the only article whose ID starts with it (at least 4 characters).
// It returns an error wrapping ErrNotFound when none matches and one
// wrapping ErrAmbiguous when several do.
func (s *Store) GetArticle(idOrPrefix string) (digest.Article, error) {
	var a digest.Article
	err := s.db.View(func(tx *bolt.Tx) error {
		id, err := resolveArticle(tx, idOrPrefix)
		if err != nil {
			return err
		}
		_, err = getJSON(tx.Bucket(bucketArticles), []byte(id), &a)
		return err
	})
	return a, err
}

// Articles returns the articles published at or after since (all of them
// when since is zero), newest first; ties by ID.
func (s *Store) Articles(since time.Time) ([]digest.Article, error) {
	var out []digest.Article
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketArticles)
		return b.ForEach(func(k, _ []byte) error {
			var a digest.Article
			if _, err := getJSON(b, k, &a); err != nil {
				return err
			}
			if since.IsZero() || !a.Published.Before(since) {
				out = append(out, a)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(x, y digest.Article) int {
		if c := y.Published.Compare(x.Published); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// UpdateArticle applies fn to the article that id names (an exact ID or a
// unique prefix, as for GetArticle) and stores the result, in one
// transaction. An error from fn is returned and nothing is written; fn
// must not change the ID. It returns the stored article.
func (s *Store) UpdateArticle(id string, fn func(*digest.Article) error) (digest.Article, error) {
	var a digest.Article
	err := s.db.Update(func(tx *bolt.Tx) error {
		full, err := resolveArticle(tx, id)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketArticles)
		if _, err := getJSON(b, []byte(full), &a); err != nil {
			return err
		}
		if err := fn(&a); err != nil {
			return err
		}
		if a.ID != full {
			return fmt.Errorf("boltstore: update article %s: the ID cannot change (to %q)", full, a.ID)
		}
		if err := putJSON(b, []byte(full), a); err != nil {
			return fmt.Errorf("boltstore: update article %s: %w", full, err)
		}
		return indexArticle(tx, a)
	})
	if err != nil {
		return digest.Article{}, err
	}
	return a, nil
}

// SetViews sets the CMS view counts of articles in one transaction. Keys
// are article IDs or GUIDs. It returns how many articles were updated and,
// sorted, the keys that matched none. Negative counts are refused.
func (s *Store) SetViews(views map[string]int64) (updated int, missing []string, err error) {
	keys := make([]string, 0, len(views))
	for k, n := range views {
		if n < 0 {
			return 0, nil, fmt.Errorf("boltstore: views for article %s: negative count %d", k, n)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	err = s.db.Update(func(tx *bolt.Tx) error {
		updated, missing = 0, nil
		b := tx.Bucket(bucketArticles)
		for _, key := range keys {
			id := []byte(key)
			if key == "" || b.Get(id) == nil {
				id = nil
				if key != "" {
					id = tx.Bucket(bucketArticleGUIDs).Get(indexKey(key))
				}
				if id == nil {
					missing = append(missing, key)
					continue
				}
				id = []byte(string(id)) // copy: written to below
			}
			var a digest.Article
			if _, err := getJSON(b, id, &a); err != nil {
				return err
			}
			a.Views = views[key]
			if err := putJSON(b, id, a); err != nil {
				return fmt.Errorf("boltstore: set views of %s: %w", id, err)
			}
			updated++
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return updated, missing, nil
}
