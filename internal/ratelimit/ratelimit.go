// Package ratelimit counts requests in sliding windows, exactly: the
// decision and the increment happen atomically, in process (over httprate's
// counter) or in Redis (one Lua script), so racing requests never overshoot
// a limit and several instances can share one budget.
package ratelimit

import (
	"context"
	"math"
	"time"
)

// Store keeps per-key counts of fixed windows aligned to the wall clock.
type Store interface {
	// Take counts one request for key in the window starting at win, unless
	// the sliding estimate prev*weight + curr is already at limit. It
	// returns whether the request was counted and the counts after that.
	Take(ctx context.Context, key string, win time.Time, window time.Duration, limit int, weight float64) (ok bool, curr, prev int, err error)
	// Peek returns the counts without counting.
	Peek(ctx context.Context, key string, win time.Time, window time.Duration) (curr, prev int, err error)
	// Add adds n (which may be negative) to key's count in the window
	// starting at win, unconditionally.
	Add(ctx context.Context, key string, win time.Time, window time.Duration, n int) error
}

// Decision is the outcome of one request against a limit.
type Decision struct {
	Allowed    bool
	Limit      int
	Remaining  int
	Reset      time.Duration // until the current window ends
	RetryAfter time.Duration // when not allowed: until a request would be

	window time.Time // start of the window the request was counted in
}

// WindowStart is the start of the fixed window the decision was made in:
// refusals with the same key and WindowStart belong to one episode.
func (d Decision) WindowStart() time.Time { return d.window }

// Limiter is one named budget: Limit requests per Window and key.
type Limiter struct {
	Name   string
	Limit  int
	Window time.Duration
	store  Store
	now    func() time.Time
}

// New returns a limiter counting in store.
func New(name string, limit int, window time.Duration, store Store) *Limiter {
	return &Limiter{Name: name, Limit: limit, Window: window, store: store, now: time.Now}
}

// windows returns the current window's start and the weight the previous
// window still has in the sliding estimate (httprate's formula).
func (l *Limiter) windows() (now, win time.Time, weight float64) {
	now = l.now().UTC()
	win = now.Truncate(l.Window)
	return now, win, 1 - float64(now.Sub(win))/float64(l.Window)
}

// Take counts a request for key if the limit allows it.
func (l *Limiter) Take(ctx context.Context, key string) (Decision, error) {
	now, win, weight := l.windows()
	ok, curr, prev, err := l.store.Take(ctx, l.Name+":"+key, win, l.Window, l.Limit, weight)
	if err != nil {
		return Decision{}, err
	}
	rate := int(math.Round(float64(prev)*weight + float64(curr)))
	d := Decision{Allowed: ok, Limit: l.Limit, Remaining: max(l.Limit-rate, 0), Reset: win.Add(l.Window).Sub(now), window: win}
	if !ok {
		d.RetryAfter = l.retryAfter(now, win, curr, prev)
	}
	return d, nil
}

// Peek decides like Take would, without counting: Allowed says whether
// one more request for key would fit.
func (l *Limiter) Peek(ctx context.Context, key string) (Decision, error) {
	now, win, weight := l.windows()
	curr, prev, err := l.store.Peek(ctx, l.Name+":"+key, win, l.Window)
	if err != nil {
		return Decision{}, err
	}
	rate := int(math.Round(float64(prev)*weight + float64(curr)))
	d := Decision{Allowed: rate < l.Limit, Limit: l.Limit, Remaining: max(l.Limit-rate, 0), Reset: win.Add(l.Window).Sub(now), window: win}
	if !d.Allowed {
		d.RetryAfter = l.retryAfter(now, win, curr, prev)
	}
	return d, nil
}

// Refund takes back a request Take counted (say, a login that succeeded,
// when only failures should count). Once its window has passed there is
// nothing left to take back.
func (l *Limiter) Refund(ctx context.Context, key string, d Decision) error {
	if _, win, _ := l.windows(); !d.Allowed || !win.Equal(d.window) {
		return nil
	}
	return l.store.Add(ctx, l.Name+":"+key, d.window, l.Window, -1)
}

// retryAfter is the wait until the sliding estimate lets one more request
// in: within this window as the previous window's weight fades, or in the
// next window as this one's does.
func (l *Limiter) retryAfter(now, win time.Time, curr, prev int) time.Duration {
	limit, w := float64(l.Limit), float64(l.Window)
	// Allowed once round(p*(1-d/w) + c) + 1 <= limit, i.e. p*(1-d/w) + c < limit-0.5.
	free := func(p, c float64) (time.Duration, bool) {
		if c >= limit-0.5 {
			return 0, false
		}
		if p == 0 {
			return 0, true
		}
		return time.Duration(max(w*(1-(limit-0.5-c)/p), 0)), true
	}
	at := win.Add(2 * l.Window)
	if d, ok := free(float64(prev), float64(curr)); ok {
		at = win.Add(d)
	} else if d, ok := free(float64(curr), 0); ok {
		at = win.Add(l.Window).Add(d)
	}
	// The estimate must drop below the bound, not just reach it.
	return max(at.Sub(now), 0) + time.Millisecond
}
