package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/task"
)

// wantRejected fails unless err is the refusal of a refresh token.
func wantRejected(tb testing.TB, what string, err error) {
	tb.Helper()
	if !errors.Is(err, task.ErrInvalidToken) && !errors.Is(err, task.ErrTokenReused) && !errors.Is(err, task.ErrTokenRevoked) {
		tb.Fatalf("%s: err = %v, want ErrInvalidToken, ErrTokenReused or ErrTokenRevoked", what, err)
	}
}

func rotate(db *postgres.DB, tb testing.TB, oldHash, newHash []byte) (*task.Session, error) {
	return db.Sessions().RotateRefreshToken(tb.Context(), oldHash, newHash, time.Now().Add(48*time.Hour))
}

func TestRotateRefreshToken(t *testing.T) {
	db, _ := pgtest.Open(t)
	u := newUser(t, db)
	sess, h0 := newSession(t, db, u.ID)
	if sess.CreatedAt.IsZero() || sess.LastUsedAt.IsZero() {
		t.Fatalf("created session = %+v, want created_at and last_used_at filled in", sess)
	}

	h1 := newHash()
	expires := time.Now().Add(48 * time.Hour).Truncate(time.Microsecond)
	got, err := db.Sessions().RotateRefreshToken(t.Context(), h0, h1, expires)
	if err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	if got.ID != sess.ID || got.UserID != u.ID || got.UserAgent != sess.UserAgent || got.IP != sess.IP {
		t.Fatalf("rotated session = %+v, want %+v", got, sess)
	}
	if !got.ExpiresAt.Equal(expires) {
		t.Fatalf("ExpiresAt = %v, want the new expiry %v", got.ExpiresAt, expires)
	}

	// The new token rotates in turn, and the chain continues.
	h2 := newHash()
	if _, err := rotate(db, t, h1, h2); err != nil {
		t.Fatalf("RotateRefreshToken(h1): %v", err)
	}
	if isRevoked(t, db, sess.ID) {
		t.Fatalf("IsRevoked after honest rotations = true, want false")
	}

	// Replaying a consumed token is theft: the whole session dies.
	_, err = rotate(db, t, h0, newHash())
	wantErr(t, "RotateRefreshToken(consumed h0)", err, task.ErrTokenReused)
	if !isRevoked(t, db, sess.ID) {
		t.Fatalf("IsRevoked after reuse = false, want true")
	}
	_, err = rotate(db, t, h2, newHash())
	wantRejected(t, "RotateRefreshToken(latest h2 after reuse)", err)
	if live := liveSessions(t, db, u.ID); len(live) != 0 {
		t.Fatalf("FindSessions after reuse = %d sessions, want none", len(live))
	}

	_, err = rotate(db, t, newHash(), newHash())
	wantErr(t, "RotateRefreshToken(unknown)", err, task.ErrInvalidToken)
}

func TestRotateExpiredRefreshToken(t *testing.T) {
	db, _ := pgtest.Open(t)
	u := newUser(t, db)
	s := &task.Session{ID: uuid.New(), UserID: u.ID}
	h := newHash()
	if err := db.Sessions().CreateSession(t.Context(), s, h, time.Now().Add(-time.Minute)); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	_, err := rotate(db, t, h, newHash())
	wantErr(t, "RotateRefreshToken(expired)", err, task.ErrInvalidToken)
}

// TestRefreshRace presents one refresh token from many clients at once, as
// a thief racing its owner would: at most one wins and the session dies.
func TestRefreshRace(t *testing.T) {
	db, _ := pgtest.Open(t)
	u := newUser(t, db)
	sess, old := newSession(t, db, u.ID)

	const n = 50
	hashes := make([][]byte, n)
	for i := range hashes {
		hashes[i] = newHash()
	}
	errs := race(n, func(i int) error {
		_, err := db.Sessions().RotateRefreshToken(t.Context(), old, hashes[i], time.Now().Add(time.Hour))
		return err
	})

	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			continue
		}
		if !errors.Is(err, task.ErrTokenReused) && !errors.Is(err, task.ErrInvalidToken) {
			t.Fatalf("goroutine %d: err = %v, want a token error", i, err)
		}
	}
	if wins > 1 {
		t.Fatalf("successful rotations = %d, want at most 1", wins)
	}
	if !isRevoked(t, db, sess.ID) {
		t.Fatalf("IsRevoked after the race = false, want true")
	}
	for _, h := range hashes {
		_, err := rotate(db, t, h, newHash())
		wantRejected(t, "RotateRefreshToken of a hash minted in the race", err)
	}
}

func TestRevokeSessionByRefreshToken(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	u := newUser(t, db)

	t.Run("logout", func(t *testing.T) {
		sess, h := newSession(t, db, u.ID)
		got, err := db.Sessions().RevokeSessionByRefreshToken(ctx, h)
		if err != nil {
			t.Fatalf("RevokeSessionByRefreshToken: %v", err)
		}
		if got.ID != sess.ID || got.UserID != u.ID {
			t.Fatalf("session = %+v, want id %v user %v", got, sess.ID, u.ID)
		}
		if !isRevoked(t, db, sess.ID) {
			t.Fatalf("IsRevoked after logout = false, want true")
		}
		_, err = rotate(db, t, h, newHash())
		wantRejected(t, "RotateRefreshToken after logout", err)
		_, err = db.Sessions().RevokeSessionByRefreshToken(ctx, h)
		wantErr(t, "second logout", err, task.ErrInvalidToken)
	})
	t.Run("consumed token", func(t *testing.T) {
		sess, h0 := newSession(t, db, u.ID)
		h1 := newHash()
		if _, err := rotate(db, t, h0, h1); err != nil {
			t.Fatalf("RotateRefreshToken: %v", err)
		}
		_, err := db.Sessions().RevokeSessionByRefreshToken(ctx, h0)
		wantErr(t, "logout with a consumed token", err, task.ErrTokenReused)
		if !isRevoked(t, db, sess.ID) {
			t.Fatalf("IsRevoked after reuse at logout = false, want true")
		}
		_, err = rotate(db, t, h1, newHash())
		wantRejected(t, "RotateRefreshToken(h1)", err)
	})
	t.Run("unknown token", func(t *testing.T) {
		_, err := db.Sessions().RevokeSessionByRefreshToken(ctx, newHash())
		wantErr(t, "logout with an unknown token", err, task.ErrInvalidToken)
	})
}

func TestFindSessions(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	u, other := newUser(t, db), newUser(t, db)
	var want []uuid.UUID
	for i := range 8 {
		s, _ := newSession(t, db, u.ID)
		switch i {
		case 2:
			if err := db.Sessions().RevokeSession(ctx, u.ID, s.ID); err != nil {
				t.Fatalf("RevokeSession: %v", err)
			}
		case 5:
			expired := &task.Session{ID: uuid.New(), UserID: u.ID}
			if err := db.Sessions().CreateSession(ctx, expired, newHash(), time.Now().Add(-time.Minute)); err != nil {
				t.Fatalf("CreateSession: %v", err)
			}
			fallthrough
		default:
			want = append(want, s.ID)
		}
	}
	slices.Reverse(want)
	newSession(t, db, other.ID)

	got := liveSessions(t, db, u.ID)
	var gotIDs []uuid.UUID
	for _, s := range got {
		gotIDs = append(gotIDs, s.ID)
	}
	if !slices.Equal(gotIDs, want) {
		t.Fatalf("FindSessions = %v, want live sessions newest first %v", gotIDs, want)
	}
	if got[0].UserAgent != "test-agent" || got[0].IP != "192.0.2.1" || got[0].UserID != u.ID {
		t.Fatalf("session = %+v, want user agent, ip and user of the login", got[0])
	}
	if d := time.Until(got[0].ExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("ExpiresAt = %v, want the login's expiry about 24h ahead", got[0].ExpiresAt)
	}

	// Seven live sessions in pages of three: back from the last page.
	p1, err := db.Sessions().FindSessions(ctx, u.ID, 3, nil)
	if err != nil {
		t.Fatalf("FindSessions: %v", err)
	}
	p2, err := db.Sessions().FindSessions(ctx, u.ID, 3, p1.Next)
	if err != nil {
		t.Fatalf("FindSessions(page 2): %v", err)
	}
	p3, err := db.Sessions().FindSessions(ctx, u.ID, 3, p2.Next)
	if err != nil {
		t.Fatalf("FindSessions(page 3): %v", err)
	}
	if len(p3.Items) != 1 || p3.Next != nil || p1.Previous != nil {
		t.Fatalf("page 3 = %d sessions (Next %v), page 1 Previous %v; want 1, nil, nil", len(p3.Items), p3.Next, p1.Previous)
	}
	back, err := db.Sessions().FindSessions(ctx, u.ID, 3, p3.Previous)
	if err != nil {
		t.Fatalf("FindSessions(previous of page 3): %v", err)
	}
	if !slices.Equal(ids(back.Items), ids(p2.Items)) || back.Previous == nil {
		t.Fatalf("previous of page 3 = %v (Previous %v), want page 2 %v", ids(back.Items), back.Previous, ids(p2.Items))
	}
	back, err = db.Sessions().FindSessions(ctx, u.ID, 3, back.Previous)
	if err != nil {
		t.Fatalf("FindSessions(previous of page 2): %v", err)
	}
	if !slices.Equal(ids(back.Items), ids(p1.Items)) || back.Previous != nil {
		t.Fatalf("previous of page 2 = %v (Previous %v), want page 1 %v", ids(back.Items), back.Previous, ids(p1.Items))
	}

	_, err = db.Sessions().FindSessions(ctx, u.ID, 3, &task.Cursor{Key: "yesterday", ID: want[0]})
	wantCode(t, "FindSessions with a malformed cursor", err, task.EBADREQUEST)
}

// TestSessionQuota: a login beyond task.MaxSessionsPerUser live sessions
// logs out the oldest ones at once, on every instance, also when logins
// race; the new logins all work.
func TestSessionQuota(t *testing.T) {
	db, dsn := pgtest.Open(t)
	ctx := t.Context()
	second := openInstance(t, dsn)
	startListener(t, second)
	u, other := newUser(t, db), newUser(t, db)

	type login struct {
		sess *task.Session
		hash []byte
	}
	var logins []login
	for range task.MaxSessionsPerUser {
		s, h := newSession(t, db, u.ID)
		logins = append(logins, login{s, h})
	}
	otherSess, _ := newSession(t, db, other.ID)
	if isRevoked(t, second, logins[0].sess.ID) {
		t.Fatalf("oldest session revoked at the quota, before going over it")
	}

	const racers = 5
	newest := make([]*task.Session, racers)
	for i, err := range race(racers, func(i int) error {
		newest[i] = &task.Session{ID: uuid.New(), UserID: u.ID}
		return db.Sessions().CreateSession(ctx, newest[i], newHash(), time.Now().Add(time.Hour))
	}) {
		if err != nil {
			t.Fatalf("CreateSession of racer %d: %v", i, err)
		}
	}

	live := liveSessions(t, db, u.ID)
	if len(live) != task.MaxSessionsPerUser {
		t.Fatalf("live sessions = %d, want %d", len(live), task.MaxSessionsPerUser)
	}
	for i, s := range newest {
		if !slices.Contains(ids(live), s.ID) || isRevoked(t, db, s.ID) {
			t.Fatalf("new login %d is not live", i)
		}
	}
	for i, l := range logins {
		wantGone := i < racers
		if got := isRevoked(t, db, l.sess.ID); got != wantGone {
			t.Fatalf("login %d (oldest first): IsRevoked = %v, want %v", i, got, wantGone)
		}
		if wantGone {
			waitFor(t, time.Second, "the other instance to hear of the revocation", func() bool { return isRevoked(t, second, l.sess.ID) })
			_, err := rotate(db, t, l.hash, newHash())
			wantRejected(t, fmt.Sprintf("RotateRefreshToken of revoked login %d", i), err)
		}
	}
	if isRevoked(t, db, otherSess.ID) {
		t.Fatalf("another user's session was revoked")
	}
}

func TestRevokeSession(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	alice, bob := newUser(t, db), newUser(t, db)
	sess, h := newSession(t, db, alice.ID)

	wantErr(t, "RevokeSession by another user", db.Sessions().RevokeSession(ctx, bob.ID, sess.ID), task.ErrNotFound)
	if isRevoked(t, db, sess.ID) {
		t.Fatalf("IsRevoked after a foreign revoke = true, want false")
	}
	if live := liveSessions(t, db, alice.ID); len(live) != 1 || live[0].ID != sess.ID {
		t.Fatalf("FindSessions = %v; want the untouched session", live)
	}
	h2 := newHash()
	if _, err := rotate(db, t, h, h2); err != nil {
		t.Fatalf("RotateRefreshToken after a foreign revoke: %v", err)
	}

	if err := db.Sessions().RevokeSession(ctx, alice.ID, sess.ID); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if !isRevoked(t, db, sess.ID) {
		t.Fatalf("IsRevoked = false, want true")
	}
	_, err := rotate(db, t, h2, newHash())
	wantRejected(t, "RotateRefreshToken after revoke", err)
	wantErr(t, "RevokeSession twice", db.Sessions().RevokeSession(ctx, alice.ID, sess.ID), task.ErrNotFound)
	wantErr(t, "RevokeSession(unknown)", db.Sessions().RevokeSession(ctx, alice.ID, uuid.New()), task.ErrNotFound)
}

func TestRevokeSessions(t *testing.T) {
	db, _ := pgtest.Open(t)
	u, other := newUser(t, db), newUser(t, db)
	keep, _ := newSession(t, db, u.ID)
	gone1, _ := newSession(t, db, u.ID)
	gone2, _ := newSession(t, db, u.ID)
	otherSess, _ := newSession(t, db, other.ID)

	if err := db.Sessions().RevokeSessions(t.Context(), u.ID, keep.ID); err != nil {
		t.Fatalf("RevokeSessions: %v", err)
	}
	for _, tt := range []struct {
		name string
		id   uuid.UUID
		want bool
	}{{"kept", keep.ID, false}, {"first", gone1.ID, true}, {"second", gone2.ID, true}, {"other user", otherSess.ID, false}} {
		if got := isRevoked(t, db, tt.id); got != tt.want {
			t.Fatalf("%s: IsRevoked = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestInactiveUserCannotRefresh(t *testing.T) {
	db, dsn := pgtest.Open(t)
	conn := sqlConn(t, dsn)

	t.Run("deactivated through UpdateUser", func(t *testing.T) {
		u := newUser(t, db)
		_, h := newSession(t, db, u.ID)
		if _, err := db.Users().UpdateUser(t.Context(), newAdmin(t, db).ID, u.ID, task.UserUpdate{IsActive: ptr(false)}); err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		_, err := rotate(db, t, h, newHash())
		wantErr(t, "RotateRefreshToken", err, task.ErrTokenRevoked)
	})
	t.Run("inactive without revocation", func(t *testing.T) {
		// The user flag alone must stop refreshes, even if a session was
		// somehow left unrevoked.
		u := newUser(t, db)
		_, h := newSession(t, db, u.ID)
		execSQL(t, conn, `UPDATE users SET is_active = false WHERE id = $1`, u.ID)
		_, err := rotate(db, t, h, newHash())
		wantErr(t, "RotateRefreshToken", err, task.ErrTokenRevoked)
	})
}

// TestNoCredentialsForAnInactiveUser: a login or key creation racing a
// deactivation cannot leave the user with a working credential.
func TestNoCredentialsForAnInactiveUser(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := context.Background()
	u := newUser(t, db)
	off := false
	if _, err := db.Users().UpdateUser(ctx, newAdmin(t, db).ID, u.ID, task.UserUpdate{IsActive: &off}); err != nil {
		t.Fatal(err)
	}
	sess := &task.Session{ID: uuid.New(), UserID: u.ID}
	if err := db.Sessions().CreateSession(ctx, sess, newHash(), time.Now().Add(time.Hour)); err == nil {
		t.Fatal("CreateSession for an inactive user succeeded")
	}
	k := &task.APIKey{UserID: u.ID, Name: "late", Prefix: "abcdef012345", Hash: newHash(), Scopes: task.AllScopes}
	if err := db.Keys().CreateKey(ctx, k); err == nil {
		t.Fatal("CreateKey for an inactive user succeeded")
	}
	if _, err := db.Keys().FindKeyByPrefix(ctx, "abcdef012345"); task.ErrorCode(err) != task.ENOTFOUND {
		t.Fatalf("a key of an inactive user is findable: %v", err)
	}
}
