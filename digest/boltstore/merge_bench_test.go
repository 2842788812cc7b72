package boltstore

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkMergeHistory(b *testing.B) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var arts []string
	var old []byte
	for k := range 10 {
		arts = append(arts, fmt.Sprintf("%016x", uint64(k+1)*0x9e3779b97f4a7c15))
		old = appendEntry(old, base.Add(time.Duration(k)*24*time.Hour), fmt.Sprintf("%016x", uint64(k+100)*0x9e3779b97f4a7c15))
	}
	at, keep := base.Add(20*24*time.Hour), base.Add(-10*24*time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		mergeHistory(old, arts, at, keep)
	}
}
