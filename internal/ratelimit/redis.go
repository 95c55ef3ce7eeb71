package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeScript decides and counts in one step, so instances sharing Redis
// never overshoot a limit together. It mirrors Local.Take.
var takeScript = redis.NewScript(`
local curr = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[4] == 'take' then
  local rate = prev * tonumber(ARGV[2]) + curr
  if math.floor(rate + 0.5) + 1 > tonumber(ARGV[1]) then
    return {0, curr, prev}
  end
end
curr = redis.call('INCRBY', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, curr, prev}
`)

// Redis counts in Redis, shared by every instance pointing at it.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
}

// NewRedis returns a store using client, with keys under prefix. Each call
// gives up after redisTimeout, however many round trips it needs (a script
// Redis forgot in a restart is sent again).
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix, timeout: redisTimeout}
}

func (s *Redis) keys(key string, win time.Time, window time.Duration) []string {
	if len(key) > 64 {
		// Keys come from client input (usernames); a long one must not
		// become a long Redis key.
		sum := sha256.Sum256([]byte(key))
		key = "h:" + hex.EncodeToString(sum[:])
	}
	// The hash tag keeps both windows of a key in one cluster slot.
	tag := "{" + s.prefix + key + "}"
	return []string{
		tag + strconv.FormatInt(win.Unix(), 10),
		tag + strconv.FormatInt(win.Add(-window).Unix(), 10),
	}
}

func (s *Redis) run(ctx context.Context, mode, key string, win time.Time, window time.Duration, limit int, weight float64, n int) (bool, int, int, error) {
	ttl := strconv.FormatInt((2 * window).Milliseconds(), 10)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := takeScript.Run(ctx, s.client, s.keys(key, win, window), limit, strconv.FormatFloat(weight, 'f', 6, 64), ttl, mode, n).Int64Slice()
	if err != nil {
		return false, 0, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return res[0] == 1, int(res[1]), int(res[2]), nil
}

// Take implements Store.
func (s *Redis) Take(ctx context.Context, key string, win time.Time, window time.Duration, limit int, weight float64) (bool, int, int, error) {
	return s.run(ctx, "take", key, win, window, limit, weight, 1)
}

// Add implements Store.
func (s *Redis) Add(ctx context.Context, key string, win time.Time, window time.Duration, n int) error {
	_, _, _, err := s.run(ctx, "add", key, win, window, 0, 0, n)
	return err
}

// Peek implements Store.
func (s *Redis) Peek(ctx context.Context, key string, win time.Time, window time.Duration) (int, int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	vals, err := s.client.MGet(ctx, s.keys(key, win, window)...).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	n := func(v any) int {
		str, _ := v.(string)
		i, _ := strconv.Atoi(str)
		return i
	}
	return n(vals[0]), n(vals[1]), nil
}

// Fallback uses Primary and, while it fails, Secondary: a Redis outage
// degrades shared limits to per-instance ones instead of failing requests.
// Health says which: the Fallbacks of one Redis share one, so the first
// failure switches every limiter at once and the outage is logged once.
// Without a Health a Fallback keeps its own, which tries Primary again a
// second after a failure.
type Fallback struct {
	Primary, Secondary Store
	Log                *slog.Logger
	Health             *Health

	once sync.Once
}

func (f *Fallback) health() *Health {
	f.once.Do(func() {
		if f.Health == nil {
			f.Health = &Health{Log: f.Log}
		}
	})
	return f.Health
}

// Take implements Store.
func (f *Fallback) Take(ctx context.Context, key string, win time.Time, window time.Duration, limit int, weight float64) (bool, int, int, error) {
	if h := f.health(); h.usable() {
		ok, c, p, err := f.Primary.Take(ctx, key, win, window, limit, weight)
		if h.result(err) {
			return ok, c, p, nil
		}
	}
	return f.Secondary.Take(ctx, key, win, window, limit, weight)
}

// Peek implements Store.
func (f *Fallback) Peek(ctx context.Context, key string, win time.Time, window time.Duration) (int, int, error) {
	if h := f.health(); h.usable() {
		c, p, err := f.Primary.Peek(ctx, key, win, window)
		if h.result(err) {
			return c, p, nil
		}
	}
	return f.Secondary.Peek(ctx, key, win, window)
}

// Add implements Store.
func (f *Fallback) Add(ctx context.Context, key string, win time.Time, window time.Duration, n int) error {
	if h := f.health(); h.usable() {
		if h.result(f.Primary.Add(ctx, key, win, window, n)) {
			return nil
		}
	}
	return f.Secondary.Add(ctx, key, win, window, n)
}

// retryEvery is how often a store that failed is tried again.
const retryEvery = time.Second

// Health is whether a shared store answers. With a Probe, no request
// touches the store while it is down: the probe tries it every retryEvery
// in the background and brings it back. Without one, the first request a
// retryEvery after the failure tries it.
type Health struct {
	Log   *slog.Logger
	Probe func(context.Context) error

	down      atomic.Bool
	mu        sync.Mutex
	retryAt   time.Time
	probing   bool
	closed    chan struct{}
	closeOnce sync.Once
}

// Up reports whether the store answered its last call or probe.
func (h *Health) Up() bool { return !h.down.Load() }

func (h *Health) usable() bool {
	if !h.down.Load() {
		return true
	}
	if h.Probe != nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return !time.Now().Before(h.retryAt)
}

// result records the outcome of a call to the store and reports whether
// it succeeded.
func (h *Health) result(err error) bool {
	if err == nil {
		if h.down.Load() {
			h.up()
		}
		return true
	}
	h.failed(err, true)
	return false
}

func (h *Health) up() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down.Swap(false) {
		h.Log.Info("rate limit store is back: limits are shared again")
	}
}

// failed marks the store down, logging it when say is set and it was up.
func (h *Health) failed(err error, say bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.retryAt = time.Now().Add(retryEvery)
	if !h.down.Swap(true) && say {
		h.Log.Warn("rate limit store unavailable: counting locally in this instance", "err", err.Error())
	}
	if h.Probe != nil && !h.probing {
		h.probing = true
		go h.probe()
	}
}

func (h *Health) probe() {
	h.mu.Lock()
	if h.closed == nil {
		h.closed = make(chan struct{})
	}
	closed := h.closed
	h.mu.Unlock()
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	for {
		select {
		case <-closed:
			return
		case <-t.C:
		}
		if h.Probe(context.Background()) == nil {
			h.mu.Lock()
			h.probing = false
			h.mu.Unlock()
			h.up()
			return
		}
	}
}

// Close stops the probe.
func (h *Health) Close() {
	h.mu.Lock()
	if h.closed == nil {
		h.closed = make(chan struct{})
	}
	closed := h.closed
	h.mu.Unlock()
	h.closeOnce.Do(func() { close(closed) })
}
