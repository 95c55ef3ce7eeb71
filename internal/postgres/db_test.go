package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
			_, err := db.Revocations().IsRevoked(ctx, id, time.Now())
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

// TestPurge: sessions go once no token they refuse can still be
// presented: two days after they ended, or twice the access token
// lifetime when that is longer. Refresh tokens go when they expire.
func TestPurge(t *testing.T) {
	db, dsn := pgtest.Open(t) // access tokens live 20 minutes
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
	execSQL(t, conn, `UPDATE sessions SET expires_at = now() - interval '36 hours' WHERE id = $1`, expiredRecently.ID)
	execSQL(t, conn, `UPDATE refresh_tokens SET expires_at = now() - interval '36 hours' WHERE session_id = $1`, expiredRecently.ID)
	execSQL(t, conn, `UPDATE sessions SET revoked_at = now() - interval '3 days' WHERE id = $1`, revokedLongAgo.ID)
	execSQL(t, conn, `UPDATE sessions SET revoked_at = now() - interval '36 hours' WHERE id = $1`, revokedRecently.ID)

	n, err := db.Purge(ctx)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	// Two sessions (their tokens go with them) and the expired token of the
	// recently expired session.
	if n != 3 {
		t.Fatalf("Purge = %d, want 3", n)
	}
	left := sessionsLeft(t, conn)
	want := []uuid.UUID{live.ID, expiredRecently.ID, revokedRecently.ID}
	if !sameIDs(left, want) {
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

	t.Run("long-lived access tokens", func(t *testing.T) {
		long, err := postgres.Open(ctx, dsn, postgres.Options{TokenTTL: 36 * time.Hour})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(long.Close)
		kept, _ := newSession(t, long, u.ID)
		gone, _ := newSession(t, long, u.ID)
		execSQL(t, conn, `UPDATE sessions SET revoked_at = now() - interval '60 hours' WHERE id = $1`, kept.ID)
		execSQL(t, conn, `UPDATE sessions SET revoked_at = now() - interval '80 hours' WHERE id = $1`, gone.ID)
		if _, err := long.Purge(ctx); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		left := sessionsLeft(t, conn)
		if !slices.Contains(left, kept.ID) || slices.Contains(left, gone.ID) {
			t.Fatalf("with 36h tokens: revoked 60h ago kept = %v, revoked 80h ago kept = %v; want true, false",
				slices.Contains(left, kept.ID), slices.Contains(left, gone.ID))
		}
	})
}

func sessionsLeft(t *testing.T, conn *pgx.Conn) []uuid.UUID {
	t.Helper()
	rows, err := conn.Query(t.Context(), `SELECT id FROM sessions`)
	if err != nil {
		t.Fatalf("select sessions: %v", err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatalf("select sessions: %v", err)
	}
	return left
}

func sameIDs(a, b []uuid.UUID) bool {
	order := func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) }
	return slices.Equal(slices.SortedFunc(slices.Values(a), order), slices.SortedFunc(slices.Values(b), order))
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

// lockTask holds a row lock on the task from another connection until the
// test ends or release is called, so that a write to it waits: a statement
// as slow as the test wants.
func lockTask(t *testing.T, dsn string, id uuid.UUID) (release func()) {
	t.Helper()
	conn := sqlConn(t, dsn)
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatalf("lock task: %v", err)
	}
	release = sync.OnceFunc(func() { _ = tx.Rollback(context.Background()) })
	t.Cleanup(release)
	return release
}

// TestQueryTimeout: a statement over its budget is cancelled by the
// database and answered service_unavailable at about the budget, keeping
// its cause for the log; without a budget (migrations) it runs to the end.
func TestQueryTimeout(t *testing.T) {
	_, dsn := pgtest.Open(t)
	const budget = 300 * time.Millisecond
	db, err := postgres.Open(t.Context(), dsn, postgres.Options{QueryTimeout: budget})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	u := newUser(t, db)
	tk := newTask(t, db, u.ID, "Locked elsewhere", "")
	release := lockTask(t, dsn, tk.ID)

	start := time.Now()
	_, err = db.Tasks().UpdateTask(t.Context(), u.ID, tk.ID, task.TaskUpdate{Completed: ptr(true)})
	took := time.Since(start)
	wantCode(t, "UpdateTask over budget", err, task.EUNAVAILABLE)
	if !errors.Is(err, task.ErrUnavailable) {
		t.Fatalf("errors.Is(%v, ErrUnavailable) = false, want true", err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("err = %v, want it to keep the query_canceled (57014) cause", err)
	}
	if took < budget || took > budget+time.Second {
		t.Fatalf("UpdateTask returned after %v, want about the budget %v", took, budget)
	}
	// The pool's connection survives the cancellation.
	if _, err := db.Tasks().FindTaskByID(t.Context(), u.ID, tk.ID); err != nil {
		t.Fatalf("FindTaskByID after a timeout: %v", err)
	}

	// Options{} (what migrate uses) sets no budget: the same write waits
	// for the lock, however long, and then succeeds.
	unbounded, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(unbounded.Close)
	time.AfterFunc(3*budget, release)
	start = time.Now()
	if _, err := unbounded.Tasks().UpdateTask(t.Context(), u.ID, tk.ID, task.TaskUpdate{Completed: ptr(true)}); err != nil {
		t.Fatalf("UpdateTask without a budget: %v", err)
	}
	if took := time.Since(start); took < 3*budget {
		t.Fatalf("UpdateTask without a budget returned after %v, before the lock was released", took)
	}
}

// TestCancelledContextStopsTheQuery: a caller that gives up (a client that
// went away) stops its statement in the database too (pgx sends a cancel
// request as it drops the connection), instead of leaving it to run, and
// hold its backend and locks, until the server next writes to the client.
func TestCancelledContextStopsTheQuery(t *testing.T) {
	db, dsn := pgtest.Open(t)
	conn := sqlConn(t, dsn)
	u := newUser(t, db)
	tk := newTask(t, db, u.ID, "Locked elsewhere", "")
	lockTask(t, dsn, tk.ID)

	running := func() int {
		t.Helper()
		var n int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND query LIKE 'UPDATE tasks SET%'`).Scan(&n)
		if err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		return n
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := db.Tasks().UpdateTask(ctx, u.ID, tk.ID, task.TaskUpdate{Completed: ptr(true)})
		done <- err
	}()
	waitFor(t, 5*time.Second, "the update to wait for the lock", func() bool { return running() == 1 })

	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("UpdateTask with a cancelled context succeeded")
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("UpdateTask did not return within 2s of its context being cancelled")
	}
	// The lock is still held: only a cancel request can have ended it.
	waitFor(t, time.Second, "the cancelled update to stop on the server", func() bool { return running() == 0 })
}
