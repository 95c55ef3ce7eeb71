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
	client redis.UniversalClient
	prefix string
}

// NewRedis returns a store using client, with keys under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
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
// After a failure it leaves Primary alone for a second, so requests do not
// each wait on a dead connection.
type Fallback struct {
	Primary, Secondary Store
	Log                *slog.Logger
	// Up, when set, is told after each call to Primary whether it
	// answered; the fallbacks of one Redis share it.
	Up *atomic.Bool

	mu        sync.Mutex
	downUntil time.Time
	down      bool
}

func (f *Fallback) pick() Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Now().Before(f.downUntil) {
		return f.Secondary
	}
	return f.Primary
}

func (f *Fallback) result(err error) bool {
	if f.Up != nil {
		f.Up.Store(err == nil)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		if f.down {
			f.down = false
			f.Log.Info("rate limit store is back: limits are shared again")
		}
		return true
	}
	if !f.down {
		f.down = true
		f.Log.Warn("rate limit store unavailable: counting locally in this instance", "err", err.Error())
	}
	f.downUntil = time.Now().Add(time.Second)
	return false
}

// Take implements Store.
func (f *Fallback) Take(ctx context.Context, key string, win time.Time, window time.Duration, limit int, weight float64) (bool, int, int, error) {
	if s := f.pick(); s == f.Primary {
		ok, c, p, err := s.Take(ctx, key, win, window, limit, weight)
		if f.result(err) {
			return ok, c, p, nil
		}
	}
	return f.Secondary.Take(ctx, key, win, window, limit, weight)
}

// Peek implements Store.
func (f *Fallback) Peek(ctx context.Context, key string, win time.Time, window time.Duration) (int, int, error) {
	if s := f.pick(); s == f.Primary {
		c, p, err := s.Peek(ctx, key, win, window)
		if f.result(err) {
			return c, p, nil
		}
	}
	return f.Secondary.Peek(ctx, key, win, window)
}

// Add implements Store.
func (f *Fallback) Add(ctx context.Context, key string, win time.Time, window time.Duration, n int) error {
	if s := f.pick(); s == f.Primary {
		if f.result(s.Add(ctx, key, win, window, n)) {
			return nil
		}
	}
	return f.Secondary.Add(ctx, key, win, window, n)
}
