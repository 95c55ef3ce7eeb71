package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestSearchTurns: one owner's searches run one at a time, another
// owner's never wait for them, and a search that cannot get its turn
// before its context ends gives up instead of queueing for ever.
func TestSearchTurns(t *testing.T) {
	var ts turns
	ctx := t.Context()
	alice, bob := uuid.New(), uuid.New()

	leave, err := ts.enter(ctx, alice)
	if err != nil {
		t.Fatalf("enter: %v", err)
	}
	start := time.Now()
	leaveBob, err := ts.enter(ctx, bob)
	if err != nil || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("another owner's search waited %v (err %v), want no wait", time.Since(start), err)
	}
	leaveBob()

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = ts.enter(short, alice)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second search of the same owner: err = %v, want it to give up at the budget", err)
	}

	entered := make(chan time.Time)
	go func() {
		l, err := ts.enter(ctx, alice)
		if err != nil {
			t.Errorf("enter: %v", err)
			close(entered)
			return
		}
		at := time.Now()
		l()
		entered <- at
	}()
	time.Sleep(50 * time.Millisecond)
	left := time.Now()
	leave()
	if at, ok := <-entered; !ok || at.Before(left) {
		t.Fatalf("the waiting search entered at %v, before the first left at %v", at, left)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.keys) != 0 {
		t.Fatalf("turns remembers %d owners after every search ended, want 0", len(ts.keys))
	}
}

// TestSearchesLeaveHalfThePool: however many owners search at once, plain
// requests still find connections; a search that finds no slot within the
// budget is unavailable rather than queued.
func TestSearchesLeaveHalfThePool(t *testing.T) {
	db := &DB{queryTimeout: 50 * time.Millisecond, searchSlots: make(chan struct{}, 2)}
	release := make(chan struct{})
	running := make(chan struct{}, 2)
	for range 2 {
		go func() {
			_ = db.searching(t.Context(), uuid.New(), func() error { running <- struct{}{}; <-release; return nil })
		}()
	}
	<-running
	<-running
	err := db.searching(t.Context(), uuid.New(), func() error { t.Error("a third search ran"); return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third owner's search with every slot taken: err = %v, want it to give up at the budget", err)
	}
	close(release)
}
