// Package audit writes the audit trail off the request path: events go to
// a bounded queue that never blocks its caller (a full queue drops the
// event and counts it), and one goroutine stores them in batches.
package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/acme/taskmanager/internal/task"
)

// Options tune a Trail. Zero values take the defaults.
type Options struct {
	QueueSize  int           // events waiting at most (default 10,000)
	BatchSize  int           // events per insert at most (default 500)
	FlushEvery time.Duration // longest an event waits for its batch (default 200 ms)
	// Dropped is told how many events were lost (a full queue, a batch
	// the database refused); Written how many were stored; Failed about
	// each refused batch. Any may be nil.
	Dropped, Written func(n int)
	Failed           func()
	Log              *slog.Logger
}

// Trail is the audit trail: Record queues, Run stores, Find reads.
type Trail struct {
	store task.AuditStore
	opt   Options
	// queue holds pointers: a buffer of 10,000 events by value would take
	// 1.5 MiB from start-up on, and every collection would scan it.
	queue chan *task.AuditEvent
	syncs chan chan struct{} // Sync's requests for a flush
	done  chan struct{}      // closed when Run has stored its last batch

	closeOnce sync.Once
	closing   chan struct{}
}

// New makes a trail storing into store; start its Run.
func New(store task.AuditStore, opt Options) *Trail {
	if opt.QueueSize <= 0 {
		opt.QueueSize = 10_000
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 500
	}
	if opt.FlushEvery <= 0 {
		opt.FlushEvery = 200 * time.Millisecond
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Trail{store: store, opt: opt, queue: make(chan *task.AuditEvent, opt.QueueSize),
		syncs: make(chan chan struct{}), done: make(chan struct{}), closing: make(chan struct{})}
}

// Record queues e without waiting: false when the queue is full and e was
// dropped (and counted).
func (t *Trail) Record(e task.AuditEvent) bool {
	select {
	case t.queue <- &e:
		return true
	default:
		if t.opt.Dropped != nil {
			t.opt.Dropped(1)
		}
		return false
	}
}

// Len is how many events wait in the queue.
func (t *Trail) Len() int { return len(t.queue) }

// Run stores queued events in batches until Close, then stores what is
// left. ctx bounds the inserts only: cancel it to give up on them.
func (t *Trail) Run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.opt.FlushEvery)
	defer tick.Stop()
	batch := make([]task.AuditEvent, 0, t.opt.BatchSize)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := t.store.InsertAuditEvents(ctx, batch); err != nil {
			t.opt.Log.Warn("audit events not stored", "events", len(batch), "err", err)
			if t.opt.Failed != nil {
				t.opt.Failed()
			}
			if t.opt.Dropped != nil {
				t.opt.Dropped(len(batch))
			}
		} else if t.opt.Written != nil {
			t.opt.Written(len(batch))
		}
		clear(batch)
		batch = batch[:0]
	}
	add := func(e *task.AuditEvent) {
		batch = append(batch, *e)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	// drain moves what is queued now into batches.
	drain := func() {
		for {
			select {
			case e := <-t.queue:
				add(e)
			default:
				return
			}
		}
	}
	for {
		select {
		case e := <-t.queue:
			add(e)
		case <-tick.C:
			flush()
		case reply := <-t.syncs:
			drain()
			flush()
			close(reply)
		case <-t.closing:
			drain()
			flush()
			return
		}
	}
}

// Sync waits until every event recorded before it is stored (or refused),
// so a reader sees its own request's events; ctx bounds the wait.
func (t *Trail) Sync(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case t.syncs <- reply:
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops Run after it has stored everything queued, waiting at most
// until ctx ends. Events recorded after Close are dropped unless there is
// room in the queue; Run no longer reads them.
func (t *Trail) Close(ctx context.Context) error {
	t.closeOnce.Do(func() { close(t.closing) })
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Find reads a page of the trail, after storing what is queued so far.
func (t *Trail) Find(ctx context.Context, f task.AuditFilter) (*task.Page[*task.AuditEvent], error) {
	// A page read right after a login must list it. Waiting is bounded:
	// under a backlog the page may miss the newest events, not fail.
	wait, cancel := context.WithTimeout(ctx, time.Second)
	_ = t.Sync(wait)
	cancel()
	return t.store.FindAuditEvents(ctx, f)
}

// Store is the store the trail writes to and reads from.
func (t *Trail) Store() task.AuditStore { return t.store }
