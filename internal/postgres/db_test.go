package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/task"
)

// TestDatabaseDown checks that an unreachable database is reported as
// service_unavailable (retry later), not as an internal error.
func TestDatabaseDown(t *testing.T) {
	db, err := postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:1/nothing?sslmode=disable&connect_timeout=3", postgres.Options{})
	if err != nil {
		t.Fatalf("Open: %v (Open must not wait for the database)", err)
	}
	t.Cleanup(db.Close)

	id := uuid.New()
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Ping", db.Ping},
		{"FindTaskByID", func(ctx context.Context) error {
			_, err := db.Tasks().FindTaskByID(ctx, id, id)
			return err
		}},
		{"FindTasks", func(ctx context.Context) error {
			_, err := db.Tasks().FindTasks(ctx, task.TaskFilter{OwnerID: id, Ordering: task.OrderCreatedDesc, Limit: 10})
			return err
		}},
		{"CreateUser", func(ctx context.Context) error {
			return db.Users().CreateUser(ctx, &task.User{Username: "down", PasswordHash: "x"})
		}},
		{"RotateRefreshToken", func(ctx context.Context) error {
			_, err := db.Sessions().RotateRefreshToken(ctx, newHash(), newHash(), time.Now().Add(time.Hour))
			return err
		}},
		{"IsRevoked", func(ctx context.Context) error {
			_, err := db.Revocations().IsRevoked(ctx, id)
			return err
		}},
		{"FindKeyByPrefix", func(ctx context.Context) error {
			_, err := db.Keys().FindKeyByPrefix(ctx, "tm_down")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			wantCode(t, tt.name, err, task.EUNAVAILABLE)
			if !errors.Is(err, task.ErrUnavailable) {
				t.Fatalf("%s: errors.Is(%v, ErrUnavailable) = false, want true", tt.name, err)
			}
		})
	}
}

func TestPurge(t *testing.T) {
	db, dsn := pgtest.Open(t)
	ctx := t.Context()
	conn := sqlConn(t, dsn)
	u := newUser(t, db)

	live, _ := newSession(t, db, u.ID)
	expiredLongAgo, _ := newSession(t, db, u.ID)
	expiredRecently, _ := newSession(t, db, u.ID)
	revokedLongAgo, _ := newSession(t, db, u.ID)
	revokedRecently, _ := newSession(t, db, u.ID)
	execSQL(t, conn, `UPDATE sessions SET expires_at = now() - interval '3 days' WHERE id = $1`, expiredLongAgo.ID)
	execSQL(t, conn, `UPDATE refresh_tokens SET expires_at = now() - interval '3 days' WHERE session_id = $1`, expiredLongAgo.ID)
	execSQL(t, conn, `UPDATE sessions SET expires_at = now() - interval '2 hours' WHERE id = $1`, expiredRecently.ID)
	execSQL(t, conn, `UPDATE refresh_tokens SET expires_at = now() - interval '2 hours' WHERE session_id = $1`, expiredRecently.ID)
	execSQL(t, conn, `UPDATE sessions SET revoked_at = now() - interval '2 days' WHERE id = $1`, revokedLongAgo.ID)
	execSQL(t, conn, `UPDATE sessions SET revoked_at = now() - interval '1 hour' WHERE id = $1`, revokedRecently.ID)

	n, err := db.Purge(ctx)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	// Two sessions (their tokens go with them) and the expired token of the
	// recently expired session.
	if n != 3 {
		t.Fatalf("Purge = %d, want 3", n)
	}

	rows, err := conn.Query(ctx, `SELECT id FROM sessions ORDER BY created_at, id`)
	if err != nil {
		t.Fatalf("select sessions: %v", err)
	}
	var left []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("scan: %v", err)
		}
		left = append(left, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("select sessions: %v", err)
	}
	want := []uuid.UUID{live.ID, expiredRecently.ID, revokedRecently.ID}
	slices.SortFunc(left, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	slices.SortFunc(want, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(left, want) {
		t.Fatalf("sessions left = %v, want live, recently expired and recently revoked %v", left, want)
	}
	var tokens int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens`).Scan(&tokens); err != nil {
		t.Fatalf("count tokens: %v", err)
	}
	if tokens != 2 {
		t.Fatalf("refresh tokens left = %d, want 2 (live and recently revoked sessions)", tokens)
	}

	// Revocations stay answerable after a purge: a purged session is revoked.
	for _, id := range []uuid.UUID{expiredLongAgo.ID, revokedLongAgo.ID} {
		if !isRevoked(t, db, id) {
			t.Fatalf("IsRevoked(purged %v) = false, want true", id)
		}
	}
	if isRevoked(t, db, live.ID) {
		t.Fatalf("IsRevoked(live) = true, want false")
	}
}

// TestUnstorableCharactersAreClientErrors: a NUL byte PostgreSQL cannot
// store is the client's mistake (400), not a server failure (500).
func TestUnstorableCharactersAreClientErrors(t *testing.T) {
	db, _ := pgtest.Open(t)
	u := newUser(t, db)
	err := db.Tasks().CreateTask(t.Context(), &task.Task{OwnerID: u.ID, Title: "Has a NUL", Description: "a\x00b"})
	if got := task.ErrorCode(err); got != task.EBADREQUEST {
		t.Fatalf("NUL in a description: code = %q, want %q", got, task.EBADREQUEST)
	}
	if _, err := db.Users().FindUserByUsername(t.Context(), "a\x00"); task.ErrorCode(err) != task.EBADREQUEST {
		t.Fatalf("NUL in a username lookup: %v", err)
	}
}
