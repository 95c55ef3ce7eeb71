package postgres_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/task"
)

// TestAuditEvents stores a batch and reads it back through every filter,
// page by page, then purges the old part.
func TestAuditEvents(t *testing.T) {
	db, _ := pgtest.Open(t)
	alice, bob := newUser(t, db), newUser(t, db)
	store := db.Audit()
	base := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	var batch []task.AuditEvent
	for i := range 5 {
		batch = append(batch, task.AuditEvent{Time: base.Add(time.Duration(i) * time.Minute), Event: "login_failed",
			UserID: alice.ID, ClientIP: "192.0.2.1", RequestID: "r" + string(rune('a'+i)), Detail: map[string]any{"subject": alice.ID.String()}})
	}
	batch = append(batch,
		task.AuditEvent{Time: base.Add(10 * time.Minute), Event: "login_succeeded", UserID: bob.ID, ClientIP: "2001:db8::1"},
		task.AuditEvent{Time: base.Add(11 * time.Minute), Event: "throttled", ClientIP: "198.51.100.4", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		task.AuditEvent{Time: base.Add(-100 * 24 * time.Hour), Event: "login_failed", UserID: alice.ID},
	)
	if err := store.InsertAuditEvents(t.Context(), batch); err != nil {
		t.Fatalf("InsertAuditEvents: %v", err)
	}

	find := func(f task.AuditFilter) *task.Page[*task.AuditEvent] {
		t.Helper()
		if f.Limit == 0 {
			f.Limit = 100
		}
		p, err := store.FindAuditEvents(t.Context(), f)
		if err != nil {
			t.Fatalf("FindAuditEvents(%+v): %v", f, err)
		}
		return p
	}
	if got := find(task.AuditFilter{UserID: alice.ID}).Items; len(got) != 6 || got[0].Username != alice.Username ||
		got[0].Detail["subject"] != alice.ID.String() || got[0].RequestID != "re" {
		t.Fatalf("alice's events: %d, newest %+v; want 6, newest first, with her username and detail", len(got), got[0])
	}
	if got := find(task.AuditFilter{Username: bob.Username}).Items; len(got) != 1 || got[0].UserID != bob.ID || got[0].ClientIP != "2001:db8::1" {
		t.Fatalf("by username: %+v", got)
	}
	if got := find(task.AuditFilter{Event: "throttled"}).Items; len(got) != 1 || got[0].UserID != uuid.Nil || got[0].Username != "" || got[0].TraceID == "" {
		t.Fatalf("anonymous event: %+v", got)
	}
	if got := find(task.AuditFilter{UserID: alice.ID, Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}).Items; len(got) != 2 ||
		!got[0].Time.Equal(base.Add(2*time.Minute)) || !got[1].Time.Equal(base.Add(time.Minute)) {
		t.Fatalf("since (inclusive) and until (exclusive): %+v", got)
	}

	// Keyset pages of two, forwards to the end and back again.
	var seen []uuid.UUID
	page := find(task.AuditFilter{UserID: alice.ID, Limit: 2})
	for {
		for _, e := range page.Items {
			seen = append(seen, e.ID)
		}
		if page.Next == nil {
			break
		}
		page = find(task.AuditFilter{UserID: alice.ID, Limit: 2, Cursor: page.Next})
	}
	all := find(task.AuditFilter{UserID: alice.ID}).Items
	if len(seen) != len(all) {
		t.Fatalf("pages gave %d events, want %d", len(seen), len(all))
	}
	for i := range all {
		if seen[i] != all[i].ID {
			t.Fatalf("page walk differs from the whole list at %d", i)
		}
	}
	back := find(task.AuditFilter{UserID: alice.ID, Limit: 2, Cursor: page.Previous})
	if len(back.Items) != 2 || back.Items[0].ID != all[2].ID {
		t.Fatalf("previous page: %+v", back.Items)
	}

	n, err := store.PurgeAuditEvents(t.Context(), time.Now().Add(-90*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purge: %d, %v; want the one event older than 90 days", n, err)
	}
}
