package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
)

// bucketEditionCounts holds each edition's delivery counters (edition ID ->
// editionCounts encoding), apart from the edition record so that a ledger
// commit updates a few bytes instead of decoding and re-encoding the whole
// record with its stories. When an edition has a key here it wins over the
// counters in its record (which are then only a copy as of the record's
// last full write); records without one (just created, or written before
// this bucket existed) carry their own. The key also caches the record's
// status with a checksum of the record it was read from, so that a commit
// need not scan the record for it: a record rewritten elsewhere (with
// putJSON) no longer matches, and its status is read again. The bucket is
// created by the first write that needs it, so databases without it stay
// readable.
var bucketEditionCounts = []byte("edition_counts")

// countsVersion is the first byte of an editionCounts value: then four
// uvarints (Sent, Failed, Suppressed, Skipped), the CRC-32C of the record
// (4 bytes, big-endian) and the record's status (the rest).
const countsVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordSum is the checksum of an edition record that editionCounts keeps.
func recordSum(raw []byte) uint32 { return crc32.Checksum(raw, castagnoli) }

// editionCounts are the counters of digest.Edition that the ledger moves,
// and the status of the record whose checksum is sum.
type editionCounts struct {
	Sent, Failed, Suppressed, Skipped int

	sum    uint32
	status digest.EditionStatus
}

func countsOf(e digest.Edition) editionCounts {
	return editionCounts{Sent: e.Sent, Failed: e.Failed, Suppressed: e.Suppressed, Skipped: e.Skipped}
}

func (c editionCounts) apply(e *digest.Edition) {
	e.Sent, e.Failed, e.Suppressed, e.Skipped = c.Sent, c.Failed, c.Suppressed, c.Skipped
}

// counter returns the counter that counts records in state st, or nil for
// the queued state.
func (c *editionCounts) counter(st digest.DeliveryStatus) *int {
	switch st {
	case digest.DeliverySent:
		return &c.Sent
	case digest.DeliveryFailed:
		return &c.Failed
	case digest.DeliverySuppressed:
		return &c.Suppressed
	case digest.DeliverySkipped:
		return &c.Skipped
	}
	return nil
}

// getCounts returns the edition's stored counters and whether it has any.
func getCounts(tx *bolt.Tx, id string) (editionCounts, bool, error) {
	b := tx.Bucket(bucketEditionCounts)
	if b == nil {
		return editionCounts{}, false, nil
	}
	raw := b.Get([]byte(id))
	if raw == nil {
		return editionCounts{}, false, nil
	}
	var c editionCounts
	if len(raw) < 1 || raw[0] != countsVersion {
		return c, true, fmt.Errorf("boltstore: edition %s: counters: unknown encoding (version byte %v)", id, raw[:min(len(raw), 1)])
	}
	rest := raw[1:]
	for _, p := range []*int{&c.Sent, &c.Failed, &c.Suppressed, &c.Skipped} {
		v, n := binary.Uvarint(rest)
		if n <= 0 || v > 1<<62 {
			return c, true, fmt.Errorf("boltstore: edition %s: counters: damaged value %x", id, raw)
		}
		*p, rest = int(v), rest[n:]
	}
	if len(rest) < 4 {
		return c, true, fmt.Errorf("boltstore: edition %s: counters: damaged value %x", id, raw)
	}
	c.sum, c.status = binary.BigEndian.Uint32(rest), digest.EditionStatus(rest[4:])
	return c, true, nil
}

// putCounts stores the edition's counters.
func putCounts(tx *bolt.Tx, id string, c editionCounts) error {
	b, err := tx.CreateBucketIfNotExists(bucketEditionCounts)
	if err != nil {
		return fmt.Errorf("boltstore: edition %s: counters: %w", id, err)
	}
	raw := make([]byte, 1, 1+4*binary.MaxVarintLen64+4+len(c.status))
	raw[0] = countsVersion
	for _, v := range []int{c.Sent, c.Failed, c.Suppressed, c.Skipped} {
		raw = binary.AppendUvarint(raw, uint64(max(v, 0)))
	}
	raw = binary.BigEndian.AppendUint32(raw, c.sum)
	raw = append(raw, c.status...)
	if err := b.Put([]byte(id), raw); err != nil {
		return fmt.Errorf("boltstore: edition %s: write counters: %w", id, err)
	}
	return nil
}

// decodeEdition decodes an edition record and merges its stored counters.
func decodeEdition(tx *bolt.Tx, id string, raw []byte) (digest.Edition, error) {
	var e digest.Edition
	if err := json.Unmarshal(raw, &e); err != nil {
		return e, fmt.Errorf("boltstore: decode record %q: %w", id, err)
	}
	c, ok, err := getCounts(tx, id)
	if err != nil {
		return e, err
	}
	if ok {
		c.apply(&e)
	}
	return e, nil
}

// putEdition writes the whole edition record and its counters.
func putEdition(tx *bolt.Tx, e digest.Edition) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("boltstore: encode edition %s: %w", e.ID, err)
	}
	if err := tx.Bucket(bucketEditions).Put([]byte(e.ID), raw); err != nil {
		return fmt.Errorf("boltstore: write edition %s: %w", e.ID, err)
	}
	c := countsOf(e)
	c.sum, c.status = recordSum(raw), e.Status
	return putCounts(tx, e.ID, c)
}

// recordStatus returns the status of the edition record raw, from c when
// it was read from the same record.
func recordStatus(id string, raw []byte, c editionCounts, ok bool) (digest.EditionStatus, uint32, error) {
	sum := recordSum(raw)
	if ok && c.status != "" && c.sum == sum {
		return c.status, sum, nil
	}
	var hdr statusOnly
	if err := json.Unmarshal(raw, &hdr); err != nil {
		return "", sum, fmt.Errorf("boltstore: decode record %q: %w", id, err)
	}
	return digest.EditionStatus(hdr.Status), sum, nil
}

// statusOnly decodes the status of an edition or delivery record and
// skips the rest.
type statusOnly struct {
	Status string `json:"status"`
}

// EditionStatus returns the status of edition id and, when it is paused,
// the reason: what a running send looks at after each commit, without
// decoding the stories or reading the pool as GetEdition does. The error
// wraps ErrNotFound when there is no such edition.
func (s *Store) EditionStatus(id string) (status digest.EditionStatus, reason string, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketEditions).Get([]byte(id))
		if raw == nil {
			return notFound("edition %q", id)
		}
		c, ok, err := getCounts(tx, id)
		if err != nil {
			return err
		}
		if status, _, err = recordStatus(id, raw, c, ok); err != nil || status != digest.EditionPaused {
			return err
		}
		var hdr struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(raw, &hdr); err != nil {
			return fmt.Errorf("boltstore: decode record %q: %w", id, err)
		}
		reason = hdr.Reason
		return nil
	})
	return status, reason, err
}
