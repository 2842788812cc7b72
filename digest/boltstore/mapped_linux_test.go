//go:build linux

package boltstore

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// rssFileKB reads the file-backed part of this process's resident memory.
func rssFileKB(t *testing.T) int {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssFile:" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// After reading 16 MB of records, releasing the mapped pages gives most of
// them back, and every record still reads as written.
func TestReleaseMappedDropsPagesNotData(t *testing.T) {
	s, _ := mustOpen(t)
	val := bytes.Repeat([]byte("x"), 1000)
	const n = 16000
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("bulk"))
		if err != nil {
			return err
		}
		b.FillPercent = 0.9
		for i := range n {
			if err := b.Put(fmt.Appendf(nil, "k%06d", i), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		t.Helper()
		err := s.db.View(func(tx *bolt.Tx) error {
			i := 0
			return tx.Bucket([]byte("bulk")).ForEach(func(k, v []byte) error {
				if string(k) != fmt.Sprintf("k%06d", i) || !bytes.Equal(v, val) {
					return fmt.Errorf("record %d: key %q, %d bytes", i, k, len(v))
				}
				i++
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	readAll()
	before := rssFileKB(t)
	if err := s.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	after := rssFileKB(t)
	t.Logf("RssFile %d KB before, %d KB after", before, after)
	if drop := before - after; drop < n/2 { // KB: at least half the 16 MB read
		t.Errorf("RssFile %d KB → %d KB after ReleaseMapped: want a drop of at least %d KB", before, after, n/2)
	}
	readAll()
}
