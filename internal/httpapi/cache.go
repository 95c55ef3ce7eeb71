package httpapi

import (
	"context"
	"sync"
	"time"
)

// recentSet is a bounded set of recently seen strings that forgets each after ttl.
type recentSet struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	items map[string]time.Time
}

func newRecentSet(max int, ttl time.Duration) *recentSet {
	return &recentSet{max: max, ttl: ttl, items: make(map[string]time.Time)}
}

func (c *recentSet) has(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.items[k]
	return ok && time.Now().Before(until)
}

func (c *recentSet) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		clear(c.items) // crude, but bounded: a full cache only costs queries
	}
	c.items[k] = time.Now().Add(c.ttl)
}

// readiness remembers the database's last answer for a moment, so a flood
// of /readyz probes (unthrottled, like any probe) cannot become a flood of
// database round trips.
type readiness struct {
	mu   sync.Mutex
	at   time.Time
	err  error
	keep time.Duration
}

// forget drops a remembered success: a request just found a dependency
// down, so the next probe must not report the last good answer. A
// remembered failure stays, so probes during an outage still share a ping.
func (r *readiness) forget() {
	r.mu.Lock()
	if r.err == nil {
		r.at = time.Time{}
	}
	r.mu.Unlock()
}

func (r *readiness) check(ctx context.Context, ping func(context.Context) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && time.Since(r.at) < r.keep {
		return r.err
	}
	r.err, r.at = ping(ctx), time.Now()
	return r.err
}
