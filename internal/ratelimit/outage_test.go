package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/logtest"
	"github.com/acme/taskmanager/internal/redistest"
)

// TestRedisFailsFastAndComesBack: with a real redis-server paused (a slow
// Redis: the port accepts, nothing answers) and then stopped, no call
// waits longer than the Redis timeout, only the first call of an outage
// waits at all (every limiter of the instance then counts locally), the
// outage is logged once, and once Redis answers again the instance
// shares its counts again by itself.
func TestRedisFailsFastAndComesBack(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	var logs logtest.Buffer
	prefix := fmt.Sprintf("fast:%d:", time.Now().UnixNano())
	a, upA, closeA, err := Connect(ctx, srv.URL, prefix, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeA()
	b, _, closeB, err := Connect(ctx, srv.URL, prefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeB()
	// Two limiters of one instance, as the server has (user, anonymous).
	perUser := at(New("user", 1_000_000, time.Minute, a(time.Minute)), time.Second)
	perHour := at(New("user_sustained", 1_000_000, time.Hour, a(time.Hour)), time.Second)

	// shared reports whether instance a's counts are seen by instance b.
	phase := 0
	shared := func() bool {
		phase++
		key := fmt.Sprintf("share-%d", phase)
		la := at(New("share", 2, time.Minute, a(time.Minute)), time.Second)
		lb := at(New("share", 2, time.Minute, b(time.Minute)), time.Second)
		for range 2 {
			if _, err := la.Take(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		d, err := lb.Take(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return !d.Allowed
	}
	if !shared() {
		t.Fatal("with Redis up, the two instances do not share counts")
	}

	for _, fault := range []struct {
		name           string
		start, recover func()
	}{
		{"paused", func() { srv.Pause(t) }, func() { srv.Resume(t) }},
		{"stopped", srv.Stop, func() { srv.Restart(t) }},
	} {
		logged, backs := strings.Count(logs.String(), "counting locally"), strings.Count(logs.String(), "limits are shared again")
		fault.start()
		var worst time.Duration
		waited := 0
		began := time.Now()
		for i := range 100 {
			for _, l := range []*Limiter{perUser, perHour} {
				t0 := time.Now()
				d, err := l.Take(ctx, fmt.Sprintf("u%d", i%3))
				took := time.Since(t0)
				if err != nil || !d.Allowed {
					t.Fatalf("%s Redis: Take = %+v, %v; want local counting", fault.name, d, err)
				}
				worst = max(worst, took)
				if took > 50*time.Millisecond {
					waited++
				}
			}
		}
		t.Logf("%s Redis: 200 calls in %v, the slowest %v, %d waited over 50 ms", fault.name,
			time.Since(began).Round(time.Millisecond), worst.Round(time.Millisecond), waited)
		if worst > redisTimeout+100*time.Millisecond {
			t.Errorf("%s Redis: a call waited %v, want at most the Redis timeout %v", fault.name, worst, redisTimeout)
		}
		if waited > 1 {
			t.Errorf("%s Redis: %d calls waited, want only the one that found it down", fault.name, waited)
		}
		if n := strings.Count(logs.String(), "counting locally") - logged; n != 1 {
			t.Errorf("%s Redis: the outage was logged %d times, want once:\n%s", fault.name, n, logs.String())
		}
		if upA() {
			t.Errorf("%s Redis: Connect's health flag says Redis is up", fault.name)
		}

		fault.recover()
		back := time.Now()
		for strings.Count(logs.String(), "limits are shared again") == backs {
			if time.Since(back) > 5*time.Second {
				t.Fatalf("%s Redis: not back to shared counting 5 s after Redis answered again:\n%s", fault.name, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s Redis: shared again %v after it answered", fault.name, time.Since(back).Round(time.Millisecond))
		if !shared() {
			t.Fatalf("%s Redis: back, but the instances do not share counts", fault.name)
		}
		if !upA() {
			t.Errorf("%s Redis: back, but Connect's health flag says it is down", fault.name)
		}
	}
}
