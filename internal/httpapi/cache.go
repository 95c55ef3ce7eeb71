package httpapi

import (
	"context"
	"sync"
	"time"
)

// recent is a bounded map of recently seen keys that forgets each after ttl.
type recent[V any] struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	items map[string]recentItem[V]
}

type recentItem[V any] struct {
	v     V
	until time.Time
}

func newRecent[V any](max int, ttl time.Duration) *recent[V] {
	return &recent[V]{max: max, ttl: ttl, items: make(map[string]recentItem[V])}
}

func (c *recent[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[k]
	if !ok || !time.Now().Before(it.until) {
		var zero V
		return zero, false
	}
	return it.v, true
}

func (c *recent[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		clear(c.items) // crude, but bounded: a full cache only costs queries
	}
	c.items[k] = recentItem[V]{v: v, until: time.Now().Add(c.ttl)}
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
