package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRecent(t *testing.T) {
	c := newRecent[int](2, 50*time.Millisecond)
	c.put("a", 1)
	if v, ok := c.get("a"); !ok || v != 1 {
		t.Fatalf("get(a) = %d, %v; want 1, true", v, ok)
	}
	if _, ok := c.get("b"); ok {
		t.Fatal("the cache must hold exactly what was put")
	}
	time.Sleep(60 * time.Millisecond)
	if _, ok := c.get("a"); ok {
		t.Fatal("an entry outlived its ttl")
	}
	c.put("a", 1)
	c.put("b", 2)
	c.put("c", 3) // full: starts over rather than growing
	if len(c.items) > 2 {
		t.Fatalf("cache holds %d entries, want at most 2", len(c.items))
	}
}

// TestReadinessIsShared: probes within the window share one database check.
func TestReadinessIsShared(t *testing.T) {
	calls := 0
	down := errors.New("down")
	ping := func(context.Context) error { calls++; return down }
	r := readiness{keep: 100 * time.Millisecond}
	for range 5 {
		if err := r.check(context.Background(), ping); !errors.Is(err, down) {
			t.Fatalf("check = %v, want the ping's error", err)
		}
	}
	if calls != 1 {
		t.Fatalf("5 probes made %d database checks, want 1", calls)
	}
	time.Sleep(110 * time.Millisecond)
	_ = r.check(context.Background(), ping)
	if calls != 2 {
		t.Fatalf("after the window: %d checks, want 2", calls)
	}
}

// TestReadinessForgetsASuccessWhenARequestFails: a probe right after a
// request met a dead database must not report the last success.
func TestReadinessForgetsASuccessWhenARequestFails(t *testing.T) {
	var pingErr error
	ping := func(context.Context) error { return pingErr }
	r := readiness{keep: time.Hour}
	if err := r.check(context.Background(), ping); err != nil {
		t.Fatalf("check = %v, want ready", err)
	}
	pingErr = errors.New("down")
	if err := r.check(context.Background(), ping); err != nil {
		t.Fatalf("within the window: check = %v, want the remembered success", err)
	}
	r.forget()
	if err := r.check(context.Background(), ping); !errors.Is(err, pingErr) {
		t.Fatalf("after forget: check = %v, want the ping's error", err)
	}
	pingErr = nil
	r.forget() // a remembered failure stays: probes during an outage share a ping
	if err := r.check(context.Background(), ping); err == nil {
		t.Fatal("forget dropped a remembered failure")
	}
}
