package delivery

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"newsdigest/digest"
)

func pageOf(from, n int) []job {
	p := make([]job, n)
	for i := range p {
		p[i].d = digest.Delivery{Email: fmt.Sprintf("r%05d@example.org", from+i)}
	}
	return p
}

// TestJobQueueHandsOverEveryJobOnce: workers taking concurrently (some
// looking ahead without waiting) get every job of every page exactly once,
// in order per page, and all return once the queue is closed and empty.
func TestJobQueueHandsOverEveryJobOnce(t *testing.T) {
	const pages, size, workers = 40, 25, 8
	q := newJobQueue(2 * workers)
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				j, ok, open := q.take(w%2 == 0 || i%3 == 0)
				if !open {
					return
				}
				if !ok {
					time.Sleep(time.Microsecond)
					continue
				}
				mu.Lock()
				got[j.d.Email]++
				mu.Unlock()
			}
		}()
	}
	for p := range pages {
		if !q.waitLow(context.Background()) {
			t.Fatal("waitLow returned false without a cancel")
		}
		q.add(pageOf(p*size, size))
	}
	q.close()
	wg.Wait()
	if len(got) != pages*size {
		t.Fatalf("%d distinct jobs taken, want %d", len(got), pages*size)
	}
	for e, n := range got {
		if n != 1 {
			t.Fatalf("%s taken %d times", e, n)
		}
	}
}

// TestJobQueueFeederSleepsUntilLow: the feeder is not let through while
// more than lowWater jobs are queued, and is as soon as a take brings the
// queue down to lowWater; a cancel lets it go with false.
func TestJobQueueFeederSleepsUntilLow(t *testing.T) {
	q := newJobQueue(3)
	q.add(pageOf(0, 5))
	through := make(chan bool, 1)
	go func() { through <- q.waitLow(context.Background()) }()
	if j, ok, _ := q.take(false); !ok || j.d.Email != "r00000@example.org" {
		t.Fatalf("first take: %v %q, want the oldest job", ok, j.d.Email)
	}
	select {
	case <-through:
		t.Fatal("the feeder went on with 4 jobs queued (low water 3)")
	case <-time.After(50 * time.Millisecond):
	}
	q.take(false)
	if ok := <-through; !ok {
		t.Fatal("waitLow: false, want true once 3 are left")
	}

	ctx, cancel := context.WithCancel(context.Background())
	q.add(pageOf(5, 5)) // 8 queued
	go func() { through <- q.waitLow(ctx) }()
	cancel()
	if ok := <-through; ok {
		t.Fatal("waitLow after a cancel: true, want false")
	}
	// Closing keeps what is queued for the workers.
	q.close()
	n := 0
	for {
		_, ok, open := q.take(true)
		if !open {
			break
		}
		if ok {
			n++
		}
	}
	if n != 8 {
		t.Fatalf("%d jobs taken after close, want the 8 queued", n)
	}
}
