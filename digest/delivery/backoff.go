package delivery

import (
	"context"
	"math/rand/v2"
	"time"
)

// jitter returns the back-off before retry number attempt: base·2^(attempt-1),
// capped at a minute, with "full jitter" (a uniform random share of it, at
// least half) so that workers do not retry in step.
func jitter(base time.Duration, attempt int) time.Duration {
	d := base << min(attempt-1, 16)
	d = min(d, time.Minute)
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx is done; it reports whether it slept fully.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
