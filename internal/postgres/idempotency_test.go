package postgres_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/task"
)

func idemKey(tb testing.TB, key, body string) task.IdempotencyKey {
	tb.Helper()
	k, err := task.NewIdempotencyKey(key, "POST", "/api/tasks/", []byte(body))
	if err != nil {
		tb.Fatalf("NewIdempotencyKey(%q): %v", key, err)
	}
	return k
}

func replyOf(t *task.Task) (task.Reply, error) {
	return task.Reply{Status: 201, Location: "/api/tasks/" + t.ID.String() + "/", Body: []byte(t.ID.String())}, nil
}

func createOnce(tb testing.TB, db *postgres.DB, owner *task.User, key task.IdempotencyKey) (*task.Reply, bool, error) {
	tb.Helper()
	return db.Tasks().CreateTaskOnce(tb.Context(), &task.Task{OwnerID: owner.ID, Title: "Once"}, key, replyOf)
}

func taskCount(tb testing.TB, db *postgres.DB, owner *task.User) int {
	tb.Helper()
	page, err := db.Tasks().FindTasks(tb.Context(), task.TaskFilter{OwnerID: owner.ID, Limit: 100, Ordering: task.OrderCreatedDesc})
	if err != nil {
		tb.Fatalf("FindTasks: %v", err)
	}
	return len(page.Items)
}

// TestCreateTaskOnceHoldsTheKey: while the first request with a key runs,
// a repeat is refused at once rather than waiting or creating a second
// task; once the first has committed, the repeat gets its reply.
func TestCreateTaskOnceHoldsTheKey(t *testing.T) {
	db, _ := pgtest.Open(t)
	u := newUser(t, db)
	key := idemKey(t, "hold-1", `{"title":"Once"}`)

	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := db.Tasks().CreateTaskOnce(t.Context(), &task.Task{OwnerID: u.ID, Title: "Once"}, key,
			func(tk *task.Task) (task.Reply, error) {
				close(inside)
				<-release
				return replyOf(tk)
			})
		done <- err
	}()
	<-inside
	_, _, err := createOnce(t, db, u, key)
	wantErr(t, "repeat while the first runs", err, task.ErrIdempotencyInProgress)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("first CreateTaskOnce: %v", err)
	}
	r, replayed, err := createOnce(t, db, u, key)
	if err != nil || !replayed || r.Status != 201 {
		t.Fatalf("repeat after the first = %+v, %v, %v; want the stored 201, replayed", r, replayed, err)
	}
	if n := taskCount(t, db, u); n != 1 {
		t.Fatalf("tasks = %d, want 1", n)
	}
}

// TestCreateTaskOnceFailureStoresNothing: a failed first request (its
// reply could not be made) leaves neither a task nor a key, so the retry runs.
func TestCreateTaskOnceFailureStoresNothing(t *testing.T) {
	db, _ := pgtest.Open(t)
	u := newUser(t, db)
	key := idemKey(t, "fail-1", `{"title":"Once"}`)
	boom := errors.New("boom")
	_, _, err := db.Tasks().CreateTaskOnce(t.Context(), &task.Task{OwnerID: u.ID, Title: "Once"}, key,
		func(*task.Task) (task.Reply, error) { return task.Reply{}, boom })
	wantErr(t, "failed render", err, boom)
	if n := taskCount(t, db, u); n != 0 {
		t.Fatalf("tasks after a failed request = %d, want 0", n)
	}
	if _, replayed, err := createOnce(t, db, u, key); err != nil || replayed {
		t.Fatalf("retry = replayed %v, %v; want a new run", replayed, err)
	}
}

// TestCreateTaskOnceExpiresAndIsPurged: past its 24 hours a key is
// forgotten: a repeat runs again, and Purge deletes the row.
func TestCreateTaskOnceExpiresAndIsPurged(t *testing.T) {
	db, dsn := pgtest.Open(t)
	conn := sqlConn(t, dsn)
	u := newUser(t, db)
	key := idemKey(t, "old-1", `{"title":"Once"}`)
	if _, _, err := createOnce(t, db, u, key); err != nil {
		t.Fatal(err)
	}
	other := idemKey(t, "old-2", `{"title":"Once"}`)
	if _, _, err := createOnce(t, db, u, other); err != nil {
		t.Fatal(err)
	}
	execSQL(t, conn, `UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'old-1'`)
	if _, replayed, err := createOnce(t, db, u, key); err != nil || replayed {
		t.Fatalf("repeat of an expired key = replayed %v, %v; want a new run", replayed, err)
	}
	if n := taskCount(t, db, u); n != 3 {
		t.Fatalf("tasks = %d, want 3", n)
	}
	execSQL(t, conn, `UPDATE idempotency_keys SET expires_at = now() - interval '1 second'`)
	if _, err := db.Purge(t.Context()); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	var left int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("idempotency keys after Purge = %d, want 0", left)
	}
}

// TestCreateTaskOnceRules: another body is refused, another user's same
// key is a key of its own, and a quota refusal stores nothing.
func TestCreateTaskOnceRules(t *testing.T) {
	db, _ := pgtest.OpenWith(t, postgres.Options{MaxTasksPerUser: 1})
	a, b := newUser(t, db), newUser(t, db)
	first, _, err := createOnce(t, db, a, idemKey(t, "k", `{"title":"A"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = createOnce(t, db, a, idemKey(t, "k", `{"title":"B"}`))
	wantErr(t, "another body", err, task.ErrIdempotencyKeyReused)
	rb, replayed, err := createOnce(t, db, b, idemKey(t, "k", `{"title":"A"}`))
	if err != nil || replayed || string(rb.Body) == string(first.Body) {
		t.Fatalf("another user's key = %+v, replayed %v, %v; want a task of its own", rb, replayed, err)
	}
	_, _, err = createOnce(t, db, a, idemKey(t, "over", `{"title":"A"}`))
	wantErr(t, "over quota", err, task.ErrQuotaExceeded)
	// The refusal was not stored: with room again, the same key runs.
	if err := db.Tasks().DeleteTask(t.Context(), a.ID, mustUUID(t, first.Body), nil); err != nil {
		t.Fatal(err)
	}
	if _, replayed, err := createOnce(t, db, a, idemKey(t, "over", `{"title":"A"}`)); err != nil || replayed {
		t.Fatalf("retry after a quota refusal = replayed %v, %v; want a new run", replayed, err)
	}
}

func mustUUID(tb testing.TB, b []byte) uuid.UUID {
	tb.Helper()
	id, err := uuid.ParseBytes(b)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}
