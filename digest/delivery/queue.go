package delivery

import (
	"context"
	"sync"
)

// jobQueue hands queued deliveries from the feeder to the workers. The
// feeder adds a page at a time and sleeps until the queue runs low: it
// wakes once per page, where a channel's blocked sender is woken by every
// receive (a goroutine switch, and often a thread wake-up, per message).
type jobQueue struct {
	mu       sync.Mutex
	nonEmpty sync.Cond // workers waiting for a job
	items    []job     // items[head:] are queued, oldest first
	head     int
	closed   bool
	waiting  int           // workers blocked in take
	low      chan struct{} // cap 1: the queue is at or below lowWater
	lowWater int
}

// newJobQueue returns a queue whose feeder is woken when lowWater or fewer
// jobs are left.
func newJobQueue(lowWater int) *jobQueue {
	q := &jobQueue{low: make(chan struct{}, 1), lowWater: lowWater}
	q.nonEmpty.L = &q.mu
	return q
}

// add queues page (copied).
func (q *jobQueue) add(page []job) {
	q.mu.Lock()
	if q.head > 0 && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:]) // drop the references the moved jobs held
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, page...)
	if q.waiting > 0 {
		q.nonEmpty.Broadcast()
	}
	q.mu.Unlock()
}

// waitLow waits until lowWater or fewer jobs are queued; false when ctx
// ends first.
func (q *jobQueue) waitLow(ctx context.Context) bool {
	for {
		q.mu.Lock()
		n := len(q.items) - q.head
		q.mu.Unlock()
		if n <= q.lowWater {
			return true
		}
		select {
		case <-q.low:
		case <-ctx.Done():
			return false
		}
	}
}

// close tells the workers that no job will be added.
func (q *jobQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.nonEmpty.Broadcast()
	q.mu.Unlock()
}

// take returns the oldest job (got). When none is queued it waits for one
// if wait is set, else returns at once; open is false once the queue is
// closed and empty.
func (q *jobQueue) take(wait bool) (j job, got, open bool) {
	q.mu.Lock()
	for len(q.items) == q.head {
		if q.closed {
			q.mu.Unlock()
			return job{}, false, false
		}
		if !wait {
			q.mu.Unlock()
			return job{}, false, true
		}
		q.waiting++
		q.nonEmpty.Wait()
		q.waiting--
	}
	j = q.items[q.head]
	q.items[q.head] = job{}
	q.head++
	left := len(q.items) - q.head
	q.mu.Unlock()
	if left <= q.lowWater {
		select {
		case q.low <- struct{}{}:
		default:
		}
	}
	return j, true, true
}
