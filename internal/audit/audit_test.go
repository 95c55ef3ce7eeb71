package audit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/audit"
	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/task"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func event(name string) task.AuditEvent {
	return task.AuditEvent{Time: time.Now(), Event: name, ClientIP: "192.0.2.9", RequestID: uuid.NewString()[:16]}
}

// TestCloseStoresWhatIsQueued: events waiting for their batch are stored
// on shutdown, not lost with the process.
func TestCloseStoresWhatIsQueued(t *testing.T) {
	db, _ := pgtest.Open(t)
	var written atomic.Int64
	trail := audit.New(db.Audit(), audit.Options{FlushEvery: time.Hour, Written: func(n int) { written.Add(int64(n)) }})
	go trail.Run(context.Background())
	for range 3 {
		if !trail.Record(event("login_failed")) {
			t.Fatal("Record dropped an event with room in the queue")
		}
	}
	if err := trail.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	page, err := db.Audit().FindAuditEvents(t.Context(), task.AuditFilter{Event: "login_failed", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 3 || written.Load() != 3 {
		t.Fatalf("stored %d events (counted %d), want the 3 queued before Close", len(page.Items), written.Load())
	}
}

// TestFullQueueDropsAndCounts: with the writer stuck, Record neither
// blocks nor grows the queue; it drops and says how many.
func TestFullQueueDropsAndCounts(t *testing.T) {
	db, _ := pgtest.Open(t)
	var dropped atomic.Int64
	trail := audit.New(db.Audit(), audit.Options{QueueSize: 2, Dropped: func(n int) { dropped.Add(int64(n)) }})
	// No Run: nothing drains the queue.
	start := time.Now()
	kept := 0
	for range 1000 {
		if trail.Record(event("throttled")) {
			kept++
		}
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("1000 Records on a full queue took %v: Record must not wait", took)
	}
	if kept != 2 || dropped.Load() != 998 || trail.Len() != 2 {
		t.Fatalf("kept %d, dropped %d, queued %d; want 2, 998, 2", kept, dropped.Load(), trail.Len())
	}
}

// TestSyncStoresEarlierEvents: a reader that syncs first sees the events
// recorded before it, though the batch was not due yet.
func TestSyncStoresEarlierEvents(t *testing.T) {
	db, _ := pgtest.Open(t)
	trail := audit.New(db.Audit(), audit.Options{FlushEvery: time.Hour})
	go trail.Run(context.Background())
	t.Cleanup(func() { _ = trail.Close(context.Background()) })
	trail.Record(event("key_created"))
	page, err := trail.Find(t.Context(), task.AuditFilter{Event: "key_created", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Fatalf("Find saw %d events, want the 1 recorded before it", len(page.Items))
	}
}
