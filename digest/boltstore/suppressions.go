package boltstore

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/subscribers"
)

// Suppression is an address that must not be mailed, and why.
type Suppression struct {
	Email  string    `json:"email"`
	Reason string    `json:"reason"` // e.g. "550 5.1.1 user unknown", "complaint", "manual"
	At     time.Time `json:"at"`
}

// Suppress adds email (normalized) to the global suppression list, or
// replaces its reason and time if it is already there. A zero at means the
// clock's now.
func (s *Store) Suppress(email, reason string, at time.Time) error {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("boltstore: suppress: %w", err)
	}
	if at.IsZero() {
		at = s.now()
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketSuppressions), []byte(norm), Suppression{Email: norm, Reason: reason, At: at})
	})
}

// Unsuppress removes email from the suppression list, or returns an error
// wrapping ErrNotFound when it is not there.
func (s *Store) Unsuppress(email string) error {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("boltstore: unsuppress: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSuppressions)
		if b.Get([]byte(norm)) == nil {
			return notFound("suppression of %s", norm)
		}
		return b.Delete([]byte(norm))
	})
}

// Suppressed reports whether email (normalized first) is on the
// suppression list, and why.
func (s *Store) Suppressed(email string) (reason string, ok bool, err error) {
	norm, err := subscribers.NormalizeEmail(email)
	if err != nil {
		return "", false, fmt.Errorf("boltstore: suppressed: %w", err)
	}
	var sup Suppression
	err = s.db.View(func(tx *bolt.Tx) error {
		var err error
		ok, err = getJSON(tx.Bucket(bucketSuppressions), []byte(norm), &sup)
		return err
	})
	if err != nil {
		return "", false, err
	}
	return sup.Reason, ok, nil
}

// Suppressions returns the whole suppression list in email order.
func (s *Store) Suppressions() ([]Suppression, error) {
	var out []Suppression
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSuppressions)
		return b.ForEach(func(k, _ []byte) error {
			var sup Suppression
			if _, err := getJSON(b, k, &sup); err != nil {
				return err
			}
			out = append(out, sup)
			return nil
		})
	})
	return out, err
}

// SuppressedAmong returns the suppressions of those of emails that are on
// the list, keyed by normalized address, in one read transaction: a sender
// checks a page of recipients at once. Addresses that do not normalize are
// reported in the error.
func (s *Store) SuppressedAmong(emails []string) (map[string]Suppression, error) {
	norms := make([]string, len(emails))
	for i, e := range emails {
		norm, err := subscribers.NormalizeEmail(e)
		if err != nil {
			return nil, fmt.Errorf("boltstore: suppressed among: %w", err)
		}
		norms[i] = norm
	}
	out := make(map[string]Suppression)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSuppressions)
		for _, norm := range norms {
			var sup Suppression
			found, err := getJSON(b, []byte(norm), &sup)
			if err != nil {
				return err
			}
			if found {
				out[norm] = sup
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
