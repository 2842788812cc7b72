package web

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client IP, forgetting idle clients.
type ipLimiter struct {
	r     rate.Limit
	burst int

	mu      sync.Mutex
	clients map[string]*ipEntry
	swept   time.Time
}

type ipEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

const (
	ipIdle       = 30 * time.Minute
	ipMaxClients = 100_000
)

func newIPLimiter(r rate.Limit, burst int) *ipLimiter {
	return &ipLimiter{r: r, burst: burst, clients: make(map[string]*ipEntry)}
}

// allow takes one token of ip's bucket at now.
func (l *ipLimiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute || len(l.clients) >= ipMaxClients {
		for k, e := range l.clients {
			if now.Sub(e.seen) > ipIdle {
				delete(l.clients, k)
			}
		}
		l.swept = now
		if len(l.clients) >= ipMaxClients { // a flood of addresses: start afresh
			clear(l.clients)
		}
	}
	e, ok := l.clients[ip]
	if !ok {
		e = &ipEntry{lim: rate.NewLimiter(l.r, l.burst)}
		l.clients[ip] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}
