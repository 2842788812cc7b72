package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memFigures break a phase's memory down, for finding where its RSS goes:
// the kernel's view from /proc/self/status (resident anonymous memory,
// which holds Go's heap and stacks, against file-backed pages, which hold
// the bbolt file's memory map) and Go's own from runtime.ReadMemStats. A
// sampler reads both every 50 ms; the Max fields are the largest samples.
type memFigures struct {
	VmHWMMB        float64 `json:"vm_hwm_mb"` // peak RSS
	VmRSSMB        float64 `json:"vm_rss_mb"` // at the end of the phase
	RssAnonMB      float64 `json:"rss_anon_mb"`
	RssFileMB      float64 `json:"rss_file_mb"`
	RssShmemMB     float64 `json:"rss_shmem_mb"`
	HeapSysMB      float64 `json:"heap_sys_mb"`   // at the end
	HeapInuseMB    float64 `json:"heap_inuse_mb"` // at the end
	MaxHeapSysMB   float64 `json:"max_heap_sys_mb"`
	MaxHeapInuseMB float64 `json:"max_heap_inuse_mb"`
	MaxRssAnonMB   float64 `json:"max_rss_anon_mb"`
	MaxRssFileMB   float64 `json:"max_rss_file_mb"`
	DBMB           float64 `json:"db_mb,omitempty"` // the database file (engine)
}

const mb = 1 << 20

// procStatus reads the given kB fields of /proc/self/status (Linux) in
// bytes; a field that is missing is absent from the map.
func procStatus(fields ...string) map[string]float64 {
	out := map[string]float64{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, f := range fields {
			if name == f {
				if kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64); err == nil {
					out[f] = kb * 1024
				}
			}
		}
	}
	return out
}

// memSampler records the largest heap and resident figures seen every
// 50 ms while a phase runs.
type memSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	max  memFigures // in bytes until finish
}

func startMemSampler() *memSampler {
	s := &memSampler{stop: make(chan struct{})}
	s.sample()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *memSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := procStatus("RssAnon", "RssFile")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max.MaxHeapSysMB = max(s.max.MaxHeapSysMB, float64(ms.HeapSys))
	s.max.MaxHeapInuseMB = max(s.max.MaxHeapInuseMB, float64(ms.HeapInuse))
	s.max.MaxRssAnonMB = max(s.max.MaxRssAnonMB, st["RssAnon"])
	s.max.MaxRssFileMB = max(s.max.MaxRssFileMB, st["RssFile"])
}

// finish stops the sampler and returns the figures now, with the maxima
// (one last sample included), in MB.
func (s *memSampler) finish() *memFigures {
	close(s.stop)
	s.wg.Wait()
	s.sample()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := procStatus("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")
	f := s.max
	f.MaxHeapSysMB /= mb
	f.MaxHeapInuseMB /= mb
	f.MaxRssAnonMB /= mb
	f.MaxRssFileMB /= mb
	f.VmHWMMB, f.VmRSSMB = st["VmHWM"]/mb, st["VmRSS"]/mb
	f.RssAnonMB, f.RssFileMB, f.RssShmemMB = st["RssAnon"]/mb, st["RssFile"]/mb, st["RssShmem"]/mb
	f.HeapSysMB, f.HeapInuseMB = float64(ms.HeapSys)/mb, float64(ms.HeapInuse)/mb
	return &f
}

// ioCalls returns how many read and write system calls this process has
// made (syscr and syscw of /proc/self/io, Linux; 0 elsewhere).
func ioCalls() (reads, writes int64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, v, _ := strings.Cut(line, ": ")
		switch name {
		case "syscr":
			reads, _ = strconv.ParseInt(v, 10, 64)
		case "syscw":
			writes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return reads, writes
}
