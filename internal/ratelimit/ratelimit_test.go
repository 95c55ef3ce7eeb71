package ratelimit

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme/taskmanager/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func redisStore(t testing.TB, url, prefix string) *Redis {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return NewRedis(c, prefix)
}

// at pins a limiter's clock a given time into a window.
func at(l *Limiter, into time.Duration) *Limiter {
	base := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return base.Add(into) }
	return l
}

// race sends n concurrent requests for one key and counts the allowed ones.
func race(t *testing.T, limiters []*Limiter, n int) int {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := limiters[i%len(limiters)].Take(context.Background(), "user-1")
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(allowed.Load())
}

func TestExactUnderConcurrency(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		l := at(New("user", 100, time.Minute, NewLocal(time.Minute)), 5*time.Second)
		if got := race(t, []*Limiter{l}, 200); got != 100 {
			t.Fatalf("allowed %d of 200 racing requests, want exactly 100", got)
		}
	})
	t.Run("redis shared by two instances", func(t *testing.T) {
		url := redistest.URL(t)
		prefix := t.Name() + time.Now().String()
		a := at(New("user", 100, time.Minute, redisStore(t, url, prefix)), 5*time.Second)
		b := at(New("user", 100, time.Minute, redisStore(t, url, prefix)), 5*time.Second)
		if got := race(t, []*Limiter{a, b}, 200); got != 100 {
			t.Fatalf("two instances allowed %d of 200 racing requests, want exactly 100 together", got)
		}
	})
}

func TestSlidingWindowAndRetryAfter(t *testing.T) {
	store := NewLocal(time.Minute)
	l := at(New("anon", 10, time.Minute, store), 50*time.Second)
	ctx := context.Background()
	for range 10 {
		if d, _ := l.Take(ctx, "ip"); !d.Allowed {
			t.Fatal("the first 10 requests must pass")
		}
	}
	d, _ := l.Take(ctx, "ip")
	if d.Allowed || d.Remaining != 0 {
		t.Fatalf("11th request: %+v, want refused with 0 remaining", d)
	}
	// Ten seconds left in this window; then the full previous window still
	// weighs 10*(1-d/60), under 9.5 once d > 3 s: a request passes 13 s on.
	if d.RetryAfter < 12*time.Second || d.RetryAfter > 14*time.Second {
		t.Fatalf("Retry-After = %v, want about 13 s", d.RetryAfter)
	}
	at(l, time.Minute+2*time.Second)
	if d, _ := l.Take(ctx, "ip"); d.Allowed {
		t.Fatal("2 s into the next window the previous window still fills the budget")
	}
	at(l, 50*time.Second+d.RetryAfter)
	if d, _ := l.Take(ctx, "ip"); !d.Allowed {
		t.Fatalf("after Retry-After a request must pass: %+v", d)
	}
	if d, _ := l.Take(ctx, "other-ip"); !d.Allowed {
		t.Fatal("another key has its own budget")
	}
}

// TestPeekAndRefund: Peek decides without counting, and a refunded
// request (a login that succeeded) leaves the budget as it was.
func TestPeekAndRefund(t *testing.T) {
	for name, store := range map[string]Store{"local": NewLocal(time.Minute), "redis": redisStore(t, redistest.URL(t), t.Name()+time.Now().String())} {
		t.Run(name, func(t *testing.T) {
			l := at(New("login_username", 3, time.Minute, store), time.Second)
			ctx := context.Background()
			exceeded := func(key string) bool {
				d, err := l.Peek(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				return !d.Allowed
			}
			for range 5 {
				d, err := l.Take(ctx, "alice")
				if err != nil || !d.Allowed {
					t.Fatalf("refunded attempts must not use up the budget: %+v %v", d, err)
				}
				if err := l.Refund(ctx, "alice", d); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				if exceeded("alice") {
					t.Fatalf("exceeded after %d failures, want only after 3", i)
				}
				if d, err := l.Take(ctx, "alice"); err != nil || !d.Allowed {
					t.Fatalf("failure %d refused: %+v %v", i+1, d, err)
				}
			}
			if !exceeded("alice") || exceeded("bob") {
				t.Fatal("alice must be over her budget and bob not")
			}
		})
	}
}

// TestLongKeysStayShortInRedis: a key made from client input (a megabyte
// username) is stored under a fixed-size name.
func TestLongKeysStayShortInRedis(t *testing.T) {
	s := redisStore(t, redistest.URL(t), "long:")
	for _, k := range s.keys(strings.Repeat("u", 1<<20), time.Now().Truncate(time.Minute), time.Minute) {
		if len(k) > 128 {
			t.Fatalf("a Redis key of %d bytes", len(k))
		}
	}
}

// TestRedisOutageFallsBackToLocal: with Redis gone the limiter keeps
// deciding, per instance, says so once in the log, and its Health (the
// taskmanager_redis_up gauge) reads down.
func TestRedisOutageFallsBackToLocal(t *testing.T) {
	srv := redistest.Start(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	health := &Health{Log: log}
	f := &Fallback{Primary: redisStore(t, srv.URL, "outage:"), Secondary: NewLocal(time.Minute), Log: log, Health: health}
	l := at(New("user", 5, time.Minute, f), time.Second)
	ctx := context.Background()
	for range 2 {
		if d, err := l.Take(ctx, "u"); err != nil || !d.Allowed {
			t.Fatalf("with Redis up: %+v %v", d, err)
		}
	}
	if !health.Up() {
		t.Fatal("Up reads false while Redis answers")
	}
	srv.Stop()
	allowed := 0
	for range 8 {
		d, err := l.Take(ctx, "u")
		if err != nil {
			t.Fatalf("a Redis outage must not fail requests: %v", err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("local fallback allowed %d, want the full limit of 5 counted locally", allowed)
	}
	if health.Up() {
		t.Fatal("Up reads true while Redis is gone")
	}
	if n := strings.Count(logs.String(), "counting locally"); n != 1 {
		t.Fatalf("the outage must be logged once, got %d lines:\n%s", n, logs.String())
	}
}

// TestConnect: without a URL the stores are this process's memory; with one
// they share counts through Redis; either way the log says which.
func TestConnect(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	local, _, closeFn, err := Connect(ctx, "", "", log)
	if err != nil {
		t.Fatal(err)
	}
	closeFn()
	if _, ok := local(time.Minute).(*Local); !ok || !strings.Contains(logs.String(), "counted by this instance alone") {
		t.Fatalf("no URL: store %T, log %q; want memory, and the log saying so", local(time.Minute), logs.String())
	}

	if _, _, _, err := Connect(ctx, "redis://:secret@host:port:port", "", log); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("a bad URL: err = %v, want an error that does not quote it", err)
	}

	url, prefix := redistest.URL(t), "connect-"+time.Now().Format(time.RFC3339Nano)+":"
	first, _, close1, err := Connect(ctx, url, prefix, log)
	if err != nil {
		t.Fatal(err)
	}
	defer close1()
	second, _, close2, err := Connect(ctx, url, prefix, log)
	if err != nil {
		t.Fatal(err)
	}
	defer close2()
	if !strings.Contains(logs.String(), "shared through Redis") {
		t.Fatalf("the log must say limits are shared, got %q", logs.String())
	}
	limiters := []*Limiter{at(New("user", 10, time.Minute, first(time.Minute)), time.Second),
		at(New("user", 10, time.Minute, second(time.Minute)), time.Second)}
	if got := race(t, limiters, 30); got != 10 {
		t.Fatalf("two processes' stores allowed %d together, want the shared limit of 10", got)
	}
}
