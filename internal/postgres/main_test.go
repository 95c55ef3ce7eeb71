package postgres_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/task"
)

// The tests live in postgres_test because pgtest imports postgres.
func TestMain(m *testing.M) { pgtest.Main(m) }

var userSeq atomic.Uint64

// newUser creates an active account with a unique username.
func newUser(tb testing.TB, db *postgres.DB) *task.User {
	tb.Helper()
	u := &task.User{Username: fmt.Sprintf("user%d", userSeq.Add(1)), PasswordHash: "argon2id$test"}
	if err := db.Users().CreateUser(tb.Context(), u); err != nil {
		tb.Fatalf("CreateUser: %v", err)
	}
	return u
}

// newAdmin creates an active administrator, as createuser --admin does.
func newAdmin(tb testing.TB, db *postgres.DB) *task.User {
	tb.Helper()
	u := &task.User{Username: fmt.Sprintf("admin%d", userSeq.Add(1)), PasswordHash: "argon2id$test", IsAdmin: true}
	if err := db.Users().CreateUser(tb.Context(), u); err != nil {
		tb.Fatalf("CreateUser(admin): %v", err)
	}
	return u
}

// newHash returns the hash of a fresh random refresh token.
func newHash() []byte {
	sum := sha256.Sum256([]byte(rand.Text()))
	return sum[:]
}

// newSession logs userID in and returns the session and its refresh token hash.
func newSession(tb testing.TB, db *postgres.DB, userID uuid.UUID) (*task.Session, []byte) {
	tb.Helper()
	s := &task.Session{ID: uuid.New(), UserID: userID, UserAgent: "test-agent", IP: "192.0.2.1"}
	h := newHash()
	if err := db.Sessions().CreateSession(tb.Context(), s, h, time.Now().Add(24*time.Hour)); err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	return s, h
}

// newTask creates a task for owner.
func newTask(tb testing.TB, db *postgres.DB, owner uuid.UUID, title, description string) *task.Task {
	tb.Helper()
	t := &task.Task{OwnerID: owner, Title: title, Description: description}
	if err := db.Tasks().CreateTask(tb.Context(), t); err != nil {
		tb.Fatalf("CreateTask(%q): %v", title, err)
	}
	return t
}

// sqlConn is a plain connection for setting up rows the stores cannot make.
func sqlConn(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), dsn)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func execSQL(tb testing.TB, conn *pgx.Conn, q string, args ...any) {
	tb.Helper()
	if _, err := conn.Exec(tb.Context(), q, args...); err != nil {
		tb.Fatalf("exec %q: %v", q, err)
	}
}

func wantErr(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func wantCode(tb testing.TB, what string, err error, code string) {
	tb.Helper()
	if got := task.ErrorCode(err); got != code {
		tb.Fatalf("%s: ErrorCode(%v) = %q, want %q", what, err, got, code)
	}
}

// isRevoked asks whether a token of sid issued just now is refused.
func isRevoked(tb testing.TB, db *postgres.DB, sid uuid.UUID) bool {
	tb.Helper()
	revoked, err := db.Revocations().IsRevoked(tb.Context(), sid, time.Now())
	if err != nil {
		tb.Fatalf("IsRevoked(%s): %v", sid, err)
	}
	return revoked
}

// liveSessions follows FindSessions page by page and returns every
// session it lists.
func liveSessions(tb testing.TB, db *postgres.DB, userID uuid.UUID) []*task.Session {
	tb.Helper()
	return allPages(tb, "FindSessions", func(cur *task.Cursor) (*task.Page[*task.Session], error) {
		return db.Sessions().FindSessions(tb.Context(), userID, 3, cur)
	})
}

// allPages follows a listing page by page from the first, through find,
// and returns every item it lists.
func allPages[T any](tb testing.TB, what string, find func(cur *task.Cursor) (*task.Page[T], error)) []T {
	tb.Helper()
	var out []T
	var cur *task.Cursor
	for range 100 {
		p, err := find(cur)
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		out = append(out, p.Items...)
		if p.Next == nil {
			return out
		}
		cur = p.Next
	}
	tb.Fatalf("%s: more than 100 pages", what)
	return nil
}

// succeeded counts the nil errors of errs; every other must be want.
func succeeded(tb testing.TB, errs []error, want error) int {
	tb.Helper()
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantErr(tb, fmt.Sprintf("racer %d", i), err, want)
	}
	return ok
}

// race runs f(0) to f(n-1) in goroutines released at once, and returns
// their errors by index.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// startListener runs db's revocation listener until the test ends (or stop
// is called) and waits until it answers from memory.
func startListener(tb testing.TB, db *postgres.DB) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.Revocations().Run(ctx)
	}()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	tb.Cleanup(stop)
	waitFor(tb, 10*time.Second, "revocation listener to go live", db.Revocations().Live)
	return stop
}

// waitFor polls cond until it holds or within has passed.
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func ids[T interface {
	*task.Task | *task.User | *task.APIKey | *task.Session
}](items []T) []uuid.UUID {
	out := make([]uuid.UUID, len(items))
	for i, it := range items {
		switch v := any(it).(type) {
		case *task.Task:
			out[i] = v.ID
		case *task.User:
			out[i] = v.ID
		case *task.APIKey:
			out[i] = v.ID
		case *task.Session:
			out[i] = v.ID
		}
	}
	return out
}
