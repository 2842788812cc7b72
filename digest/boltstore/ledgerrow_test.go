package boltstore

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"newsdigest/digest"
)

func TestDeliveryRowsRoundTripAndReadOldJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 6, 0, 0, 123456789, time.UTC)
	for _, d := range []digest.Delivery{
		{Edition: "daily-1", Email: "ann@example.org", Status: digest.DeliveryQueued, At: at},
		{Edition: "daily-1", Email: "ann@example.org", Status: digest.DeliverySent, Attempts: 2, At: at, MessageID: "abc@gazette.example"},
		{Edition: "daily-1", Email: "ann@example.org", Status: digest.DeliveryFailed, Attempts: 4, At: at, Reply: "550 5.1.1 <ann@example.org>: no such user " + strings.Repeat("é", 300)},
		{Edition: "daily-1", Email: "ann@example.org", Status: digest.DeliverySkipped},
		{Edition: "daily-1", Email: "ann@example.org", Status: digest.DeliverySuppressed, Reply: "suppressed: complaint"},
	} {
		raw, err := appendDelivery(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeDelivery(d.Edition, []byte(d.Email), raw)
		if err != nil || got != d {
			t.Errorf("round trip of %+v: got %+v, %v", d, got, err)
		}
		if st, err := rowStatus(raw); err != nil || st != d.Status {
			t.Errorf("rowStatus = %q, %v; want %q", st, err, d.Status)
		}
		// A row an earlier release wrote as JSON reads the same.
		old, _ := json.Marshal(d)
		if got, err := decodeDelivery(d.Edition, []byte(d.Email), old); err != nil || !got.At.Equal(d.At) || got.Status != d.Status || got.Reply != d.Reply {
			t.Errorf("JSON row %s: got %+v, %v", old, got, err)
		}
		if st, err := rowStatus(old); err != nil || st != d.Status {
			t.Errorf("rowStatus(JSON) = %q, %v", st, err)
		}
		// Every truncation is an error, never a panic or a wrong row.
		for n := range len(raw) {
			if got, err := decodeDelivery(d.Edition, []byte(d.Email), raw[:n]); err == nil {
				t.Errorf("truncated to %d bytes: decoded %+v", n, got)
			}
		}
	}
	if _, err := appendDelivery(nil, digest.Delivery{Status: "lost"}); err == nil {
		t.Error("an unknown status was encoded")
	}
	for _, bad := range [][]byte{{}, {0x02, 0}, {rowV1, 9}, append([]byte{rowV1, 1, 0, 0, 0, 0}, 'x')} {
		if _, err := decodeDelivery("e", []byte("a@b.example"), bad); err == nil {
			t.Errorf("row %x decoded", bad)
		}
	}
}

func FuzzDecodeDelivery(f *testing.F) {
	row, _ := appendDelivery(nil, digest.Delivery{Status: digest.DeliverySent, Attempts: 1, MessageID: "x@y", Reply: "250 ok"})
	f.Add(row)
	f.Add([]byte(`{"status":"sent"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := decodeDelivery("e", []byte("a@b.example"), raw)
		if err != nil || len(raw) == 0 || raw[0] != rowV1 {
			return
		}
		again, err := appendDelivery(nil, d)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", d, err)
		}
		back, err := decodeDelivery("e", []byte("a@b.example"), again)
		if err != nil || back != d {
			t.Fatalf("re-encoded row decodes to %+v, %v; want %+v", back, err, d)
		}
	})
}
