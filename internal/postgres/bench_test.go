package postgres_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/task"
)

func BenchmarkFindTasks(b *testing.B) {
	db, dsn := pgtest.Open(b)
	owner := newUser(b, db)
	conn := sqlConn(b, dsn)
	execSQL(b, conn, `INSERT INTO tasks (owner_id, title, description, completed, created_at, updated_at)
		SELECT $1, 'Task ' || g, 'description ' || g, g % 2 = 0,
			now() - g * interval '1 second', now() - g * interval '1 second'
		FROM generate_series(1, 1000) g`, owner.ID)
	execSQL(b, conn, `ANALYZE tasks`)

	f := task.TaskFilter{OwnerID: owner.ID, Ordering: task.OrderCreatedDesc, Limit: 20}
	// The cursor after 25 pages sits in the middle of the list.
	pages := walk(b, db, f)
	if len(pages) != 50 {
		b.Fatalf("pages = %d, want 50", len(pages))
	}
	middle := pages[24].Next

	for _, bb := range []struct {
		name   string
		cursor *task.Cursor
	}{{"first page", nil}, {"middle cursor", middle}} {
		b.Run(bb.name, func(b *testing.B) {
			f := f
			f.Cursor = bb.cursor
			for b.Loop() {
				p, err := db.Tasks().FindTasks(b.Context(), f)
				if err != nil {
					b.Fatalf("FindTasks: %v", err)
				}
				if len(p.Items) != 20 {
					b.Fatalf("items = %d, want 20", len(p.Items))
				}
			}
		})
	}
}

// benchRevocations revokes one of two sessions and checks both in turn.
func benchRevocations(b *testing.B, listen bool) {
	db, _ := pgtest.Open(b)
	if listen {
		startListener(b, db)
	}
	u := newUser(b, db)
	revoked, _ := newSession(b, db, u.ID)
	live, _ := newSession(b, db, u.ID)
	if err := db.Sessions().RevokeSession(b.Context(), u.ID, revoked.ID); err != nil {
		b.Fatalf("RevokeSession: %v", err)
	}
	if db.Revocations().Live() != listen {
		b.Fatalf("Live() = %v, want %v", db.Revocations().Live(), listen)
	}
	ids := []uuid.UUID{revoked.ID, live.ID}
	i := 0
	for b.Loop() {
		got, err := db.Revocations().IsRevoked(b.Context(), ids[i%2])
		if err != nil {
			b.Fatalf("IsRevoked: %v", err)
		}
		if want := i%2 == 0; got != want {
			b.Fatalf("IsRevoked = %v, want %v", got, want)
		}
		i++
	}
}

func BenchmarkIsRevokedMemory(b *testing.B)   { benchRevocations(b, true) }
func BenchmarkIsRevokedDatabase(b *testing.B) { benchRevocations(b, false) }
