package postgres_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/task"
)

// openInstance opens another DB on dsn, as a second server process would.
func openInstance(tb testing.TB, dsn string) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(tb.Context(), dsn, postgres.Options{TokenTTL: time.Hour})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(db.Close)
	return db
}

// TestRevocationsAcrossInstances revokes through one instance and expects
// the other to know from memory within a second: LISTEN/NOTIFY at work.
func TestRevocationsAcrossInstances(t *testing.T) {
	db1, dsn := pgtest.Open(t)
	db2 := openInstance(t, dsn)
	startListener(t, db1)
	startListener(t, db2)
	admin := newAdmin(t, db1)

	tests := []struct {
		name   string
		revoke func(t *testing.T, u *task.User, s *task.Session, refresh []byte) error
	}{
		{"RevokeSession", func(t *testing.T, u *task.User, s *task.Session, _ []byte) error {
			return db1.Sessions().RevokeSession(t.Context(), u.ID, s.ID)
		}},
		{"RevokeSessionByRefreshToken", func(t *testing.T, _ *task.User, _ *task.Session, h []byte) error {
			_, err := db1.Sessions().RevokeSessionByRefreshToken(t.Context(), h)
			return err
		}},
		{"RevokeSessions", func(t *testing.T, u *task.User, _ *task.Session, _ []byte) error {
			return db1.Sessions().RevokeSessions(t.Context(), u.ID, uuid.Nil)
		}},
		{"SetPassword", func(t *testing.T, u *task.User, _ *task.Session, _ []byte) error {
			return db1.Users().SetPassword(t.Context(), u.ID, "argon2id$changed", uuid.Nil, false)
		}},
		{"deactivation", func(t *testing.T, u *task.User, _ *task.Session, _ []byte) error {
			_, err := db1.Users().UpdateUser(t.Context(), admin.ID, u.ID, task.UserUpdate{IsActive: ptr(false)})
			return err
		}},
		{"refresh token reuse", func(t *testing.T, _ *task.User, _ *task.Session, h []byte) error {
			if _, err := rotate(db1, t, h, newHash()); err != nil {
				return err
			}
			_, err := rotate(db1, t, h, newHash())
			if errors.Is(err, task.ErrTokenReused) {
				return nil
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t, db1)
			s, h := newSession(t, db1, u.ID)
			bystander, _ := newSession(t, db1, newUser(t, db1).ID)
			if isRevoked(t, db2, s.ID) {
				t.Fatalf("second instance: IsRevoked before revocation = true, want false")
			}

			if err := tt.revoke(t, u, s, h); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if !isRevoked(t, db1, s.ID) {
				t.Fatalf("first instance: IsRevoked right after its own revocation = false, want true")
			}
			took := waitFor(t, time.Second, "the second instance to hear of the revocation", func() bool {
				return isRevoked(t, db2, s.ID)
			})
			if !db2.Revocations().Live() {
				t.Fatalf("second instance left memory mode during the test; the answer did not prove NOTIFY")
			}
			t.Logf("second instance knew after %v", took)
			if isRevoked(t, db2, bystander.ID) {
				t.Fatalf("second instance: bystander IsRevoked = true, want false")
			}
		})
	}
}

// TestListenerLoadsEarlierRevocations starts a listener after a revocation:
// it must learn of it from the database when it connects.
func TestListenerLoadsEarlierRevocations(t *testing.T) {
	db1, dsn := pgtest.Open(t)
	u := newUser(t, db1)
	revoked, _ := newSession(t, db1, u.ID)
	live, _ := newSession(t, db1, u.ID)
	if err := db1.Sessions().RevokeSession(t.Context(), u.ID, revoked.ID); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}

	db2 := openInstance(t, dsn)
	startListener(t, db2)
	if !isRevoked(t, db2, revoked.ID) {
		t.Fatalf("IsRevoked(revoked before the listener started) = false, want true")
	}
	if isRevoked(t, db2, live.ID) {
		t.Fatalf("IsRevoked(live) = true, want false")
	}
}

// TestRevocationsFallBackToDatabase checks instances whose listener is not
// running: each answer must come from the database.
func TestRevocationsFallBackToDatabase(t *testing.T) {
	db1, dsn := pgtest.Open(t)
	db2 := openInstance(t, dsn)
	u := newUser(t, db1)
	revoked, _ := newSession(t, db1, u.ID)
	live, _ := newSession(t, db1, u.ID)
	// Revoke through the other instance, so db1's memory cannot know.
	if err := db2.Sessions().RevokeSession(t.Context(), u.ID, revoked.ID); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if db1.Revocations().Live() {
		t.Fatalf("Live() = true without Run, want false")
	}

	tests := []struct {
		name string
		id   uuid.UUID
		want bool
	}{
		{"revoked", revoked.ID, true},
		{"live", live.ID, false},
		{"unknown session", uuid.New(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isRevoked(t, db1, tt.id); got != tt.want {
				t.Fatalf("IsRevoked = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("after the listener stops", func(t *testing.T) {
		db3 := openInstance(t, dsn)
		stop := startListener(t, db3)
		stop()
		if db3.Revocations().Live() {
			t.Fatalf("Live() after stop = true, want false")
		}
		s, _ := newSession(t, db1, u.ID)
		if isRevoked(t, db3, s.ID) {
			t.Fatalf("IsRevoked(live) = true, want false")
		}
		if err := db1.Sessions().RevokeSession(t.Context(), u.ID, s.ID); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		if !isRevoked(t, db3, s.ID) {
			t.Fatalf("IsRevoked(revoked while the listener was down) = false, want true")
		}
	})
}

// TestRevocationsNeverRevive: a token the memory cannot vouch for, one
// issued longer ago than the memory's window (under a longer token
// lifetime before a restart, say), is checked in the database, where a
// purged session counts as revoked.
func TestRevocationsNeverRevive(t *testing.T) {
	db1, dsn := pgtest.Open(t)
	conn := sqlConn(t, dsn)
	u := newUser(t, db1)

	t.Run("revoked, purged, restarted", func(t *testing.T) {
		s, _ := newSession(t, db1, u.ID)
		issued := time.Now().Add(-80 * time.Hour)
		if err := db1.Sessions().RevokeSession(t.Context(), u.ID, s.ID); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		// As if revoked three days ago, past the purge horizon.
		execSQL(t, conn, `UPDATE sessions SET revoked_at = now() - interval '72 hours' WHERE id = $1`, s.ID)
		if _, err := db1.Purge(t.Context()); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		if left := sessionsLeft(t, conn); slices.Contains(left, s.ID) {
			t.Fatalf("the revoked session was not purged; the test proves nothing")
		}

		restarted := openInstance(t, dsn)
		startListener(t, restarted)
		revoked, err := restarted.Revocations().IsRevoked(t.Context(), s.ID, issued)
		if err != nil {
			t.Fatalf("IsRevoked: %v", err)
		}
		if !revoked {
			t.Fatalf("a token issued before its session's revocation is accepted after a purge and a restart")
		}
	})

	t.Run("older than the memory's window", func(t *testing.T) {
		db2 := openInstance(t, dsn) // remembers revocations for an hour
		startListener(t, db2)
		revoked, _ := newSession(t, db1, u.ID)
		live, _ := newSession(t, db1, u.ID)
		// Revoked two hours ago, before anything the listener loads, and
		// without a notification: only the database knows.
		execSQL(t, conn, `UPDATE sessions SET revoked_at = now() - interval '2 hours' WHERE id = $1`, revoked.ID)

		for _, tt := range []struct {
			name string
			id   uuid.UUID
			want bool
		}{{"revoked", revoked.ID, true}, {"live", live.ID, false}} {
			got, err := db2.Revocations().IsRevoked(t.Context(), tt.id, time.Now().Add(-3*time.Hour))
			if err != nil {
				t.Fatalf("IsRevoked: %v", err)
			}
			if got != tt.want {
				t.Fatalf("%s session, token issued 3h ago: IsRevoked = %v, want %v", tt.name, got, tt.want)
			}
		}
		if !db2.Revocations().Live() {
			t.Fatalf("the listener went down during the test; the answers did not prove the age rule")
		}
	})
}
