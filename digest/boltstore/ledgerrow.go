package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"newsdigest/digest"
)

// Delivery records (the ledger's rows, one per edition and address) are
// written in a compact binary form: a send writes one per message and the
// feeder reads one per queued recipient, so JSON's cost showed in every
// message's CPU. The row's edition and address are its bucket and key.
//
//	[rowV1][status][uvarint attempts][varint unix nanoseconds of At, 0 = zero]
//	[uvarint len][Message-ID][uvarint len][Reply]
//
// Rows written as JSON by earlier releases (they start with '{') are read
// as before.
const rowV1 = 0x01

var rowStatuses = []digest.DeliveryStatus{
	digest.DeliveryQueued, digest.DeliverySent, digest.DeliveryFailed,
	digest.DeliverySuppressed, digest.DeliverySkipped,
}

func statusCode(st digest.DeliveryStatus) (byte, bool) {
	for i, s := range rowStatuses {
		if s == st {
			return byte(i), true
		}
	}
	return 0, false
}

// appendDelivery appends d's row to dst.
func appendDelivery(dst []byte, d digest.Delivery) ([]byte, error) {
	code, ok := statusCode(d.Status)
	if !ok {
		return nil, fmt.Errorf("unknown delivery status %q", d.Status)
	}
	dst = append(dst, rowV1, code)
	dst = binary.AppendUvarint(dst, uint64(max(d.Attempts, 0)))
	var at int64
	if !d.At.IsZero() {
		at = d.At.UnixNano()
	}
	dst = binary.AppendVarint(dst, at)
	dst = binary.AppendUvarint(dst, uint64(len(d.MessageID)))
	dst = append(dst, d.MessageID...)
	dst = binary.AppendUvarint(dst, uint64(len(d.Reply)))
	return append(dst, d.Reply...), nil
}

// putDelivery stores d at key (its address) in an edition's records.
func putDelivery(b *bolt.Bucket, key []byte, d digest.Delivery) error {
	raw, err := appendDelivery(make([]byte, 0, 24+len(d.MessageID)+len(d.Reply)), d)
	if err != nil {
		return fmt.Errorf("boltstore: encode delivery %s: %w", key, err)
	}
	if err := b.Put(key, raw); err != nil {
		return fmt.Errorf("boltstore: write delivery %s: %w", key, err)
	}
	return nil
}

// getDelivery reads the row at key of edition's records.
func getDelivery(b getter, edition string, key []byte) (digest.Delivery, bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return digest.Delivery{}, false, nil
	}
	d, err := decodeDelivery(edition, key, raw)
	return d, true, err
}

var errRow = errors.New("damaged delivery row")

// decodeDelivery decodes a row of either form.
func decodeDelivery(edition string, key, raw []byte) (digest.Delivery, error) {
	if len(raw) > 0 && raw[0] == '{' {
		var d digest.Delivery
		if err := json.Unmarshal(raw, &d); err != nil {
			return d, fmt.Errorf("boltstore: decode delivery %q of %s: %w", key, edition, err)
		}
		return d, nil
	}
	d := digest.Delivery{Edition: edition, Email: string(key)}
	fail := func() (digest.Delivery, error) {
		return digest.Delivery{}, fmt.Errorf("boltstore: decode delivery %q of %s: %w", key, edition, errRow)
	}
	if len(raw) < 2 || raw[0] != rowV1 || int(raw[1]) >= len(rowStatuses) {
		return fail()
	}
	d.Status = rowStatuses[raw[1]]
	p := raw[2:]
	attempts, n := binary.Uvarint(p)
	if n <= 0 || attempts > 1<<31 {
		return fail()
	}
	d.Attempts, p = int(attempts), p[n:]
	at, n := binary.Varint(p)
	if n <= 0 {
		return fail()
	}
	if at != 0 {
		d.At = time.Unix(0, at).UTC()
	}
	p = p[n:]
	for _, f := range []*string{&d.MessageID, &d.Reply} {
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return fail()
		}
		*f, p = string(p[n:n+int(l)]), p[n+int(l):]
	}
	if len(p) != 0 {
		return fail()
	}
	return d, nil
}

// rowStatus returns the status of a row of either form, without decoding
// the rest of a binary one.
func rowStatus(raw []byte) (digest.DeliveryStatus, error) {
	if len(raw) > 0 && raw[0] == '{' {
		var prev statusOnly
		if err := json.Unmarshal(raw, &prev); err != nil {
			return "", err
		}
		return digest.DeliveryStatus(prev.Status), nil
	}
	if len(raw) < 2 || raw[0] != rowV1 || int(raw[1]) >= len(rowStatuses) {
		return "", errRow
	}
	return rowStatuses[raw[1]], nil
}
