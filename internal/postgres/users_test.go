package postgres_test

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/task"
)

func TestCreateUserDuplicateUsername(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	alice := &task.User{Username: "Alice", Email: "alice@example.com", PasswordHash: "h1"}
	if err := db.Users().CreateUser(ctx, alice); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if alice.ID == uuid.Nil || !alice.IsActive || alice.DateJoined.IsZero() {
		t.Fatalf("created user = %+v, want id, active and date_joined filled in", alice)
	}

	for _, name := range []string{"Alice", "alice", "ALICE"} {
		t.Run(name, func(t *testing.T) {
			err := db.Users().CreateUser(ctx, &task.User{Username: name, PasswordHash: "h2"})
			wantCode(t, "CreateUser", err, task.EINVALID)
			if fields := task.ErrorFields(err); len(fields["username"]) == 0 {
				t.Fatalf("fields = %v, want a message on username", fields)
			}
		})
	}
}

func TestFindUserByUsername(t *testing.T) {
	db, _ := pgtest.Open(t)
	alice := &task.User{Username: "Alice", Email: "alice@example.com", PasswordHash: "h1", IsAdmin: true}
	if err := db.Users().CreateUser(t.Context(), alice); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	newUser(t, db)

	for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
		t.Run(name, func(t *testing.T) {
			got, err := db.Users().FindUserByUsername(t.Context(), name)
			if err != nil {
				t.Fatalf("FindUserByUsername: %v", err)
			}
			if got.ID != alice.ID || got.Username != "Alice" || got.Email != alice.Email ||
				got.PasswordHash != "h1" || !got.IsAdmin || !got.IsActive {
				t.Fatalf("user = %+v, want %+v", got, alice)
			}
		})
	}
	_, err := db.Users().FindUserByUsername(t.Context(), "alic")
	wantErr(t, "FindUserByUsername(alic)", err, task.ErrNotFound)
	_, err = db.Users().FindUserByID(t.Context(), uuid.New())
	wantErr(t, "FindUserByID(unknown)", err, task.ErrNotFound)
}

func TestFindUsersPagination(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	var all []*task.User
	for range 7 {
		all = append(all, newUser(t, db))
	}
	slices.SortFunc(all, func(a, b *task.User) int {
		if c := a.DateJoined.Compare(b.DateJoined); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})

	var pages []*task.Page[*task.User]
	var cur *task.Cursor
	for {
		p, err := db.Users().FindUsers(ctx, 3, cur)
		if err != nil {
			t.Fatalf("FindUsers: %v", err)
		}
		pages = append(pages, p)
		if p.Next == nil || len(pages) > 10 {
			break
		}
		cur = p.Next
	}
	if got := pageSizes(pages); !slices.Equal(got, []int{3, 3, 1}) {
		t.Fatalf("page sizes = %v, want [3 3 1]", got)
	}
	var got []uuid.UUID
	for _, p := range pages {
		got = append(got, ids(p.Items)...)
	}
	if want := ids(all); !slices.Equal(got, want) {
		t.Fatalf("walked ids = %v, want oldest first %v", got, want)
	}
	if pages[0].Previous != nil {
		t.Fatalf("first page Previous = %+v, want nil", pages[0].Previous)
	}

	back, err := db.Users().FindUsers(ctx, 3, pages[2].Previous)
	if err != nil {
		t.Fatalf("FindUsers(previous of page 3): %v", err)
	}
	if got, want := ids(back.Items), ids(pages[1].Items); !slices.Equal(got, want) {
		t.Fatalf("previous of page 3 = %v, want page 2 %v", got, want)
	}
	back, err = db.Users().FindUsers(ctx, 3, back.Previous)
	if err != nil {
		t.Fatalf("FindUsers(previous of page 2): %v", err)
	}
	if got, want := ids(back.Items), ids(pages[0].Items); !slices.Equal(got, want) || back.Previous != nil {
		t.Fatalf("previous of page 2 = %v (Previous %v), want page 1 %v (Previous nil)", got, back.Previous, want)
	}
}

func TestDeactivateUserRevokesEverything(t *testing.T) {
	db, dsn := pgtest.Open(t)
	ctx := t.Context()
	conn := sqlConn(t, dsn)
	victim, bystander := newUser(t, db), newUser(t, db)

	type login struct {
		sess *task.Session
		hash []byte
	}
	var logins []login
	for range 3 {
		s, h := newSession(t, db, victim.ID)
		logins = append(logins, login{s, h})
	}
	keys := []*task.APIKey{newKey(t, db, victim.ID), newKey(t, db, victim.ID)}
	otherSess, otherHash := newSession(t, db, bystander.ID)
	otherKey := newKey(t, db, bystander.ID)

	admin := newAdmin(t, db)
	u, err := db.Users().UpdateUser(ctx, admin.ID, victim.ID, task.UserUpdate{IsActive: ptr(false)})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if u.IsActive {
		t.Fatalf("IsActive = true, want false")
	}

	for i, l := range logins {
		var revokedAt *time.Time
		if err := conn.QueryRow(ctx, `SELECT revoked_at FROM sessions WHERE id = $1`, l.sess.ID).Scan(&revokedAt); err != nil {
			t.Fatalf("select session: %v", err)
		}
		if revokedAt == nil {
			t.Fatalf("session %d revoked_at = NULL, want set", i)
		}
		if !isRevoked(t, db, l.sess.ID) {
			t.Fatalf("session %d IsRevoked = false, want true", i)
		}
		_, err := db.Sessions().RotateRefreshToken(ctx, l.hash, newHash(), time.Now().Add(time.Hour))
		wantCode(t, fmt.Sprintf("RotateRefreshToken of session %d", i), err, task.EINVALIDTOKEN)
	}
	if live := liveSessions(t, db, victim.ID); len(live) != 0 {
		t.Fatalf("FindSessions = %d sessions; want none", len(live))
	}
	for i, k := range keys {
		_, err := db.Keys().FindKeyByPrefix(ctx, k.Prefix)
		wantErr(t, fmt.Sprintf("FindKeyByPrefix(key %d)", i), err, task.ErrNotFound)
	}
	// The keys are revoked, not merely hidden while the user is inactive:
	// reactivation does not bring them back.
	if _, err := db.Users().UpdateUser(ctx, admin.ID, victim.ID, task.UserUpdate{IsActive: ptr(true)}); err != nil {
		t.Fatalf("UpdateUser(reactivate): %v", err)
	}
	for i, k := range keys {
		_, err := db.Keys().FindKeyByPrefix(ctx, k.Prefix)
		wantErr(t, fmt.Sprintf("FindKeyByPrefix(key %d) after reactivation", i), err, task.ErrNotFound)
	}
	if !isRevoked(t, db, logins[0].sess.ID) {
		t.Fatalf("IsRevoked after reactivation = false, want true")
	}

	// Nobody else is touched.
	if isRevoked(t, db, otherSess.ID) {
		t.Fatalf("bystander session IsRevoked = true, want false")
	}
	if _, err := db.Keys().FindKeyByPrefix(ctx, otherKey.Prefix); err != nil {
		t.Fatalf("bystander FindKeyByPrefix: %v", err)
	}
	if _, err := db.Sessions().RotateRefreshToken(ctx, otherHash, newHash(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("bystander RotateRefreshToken: %v", err)
	}

	_, err = db.Users().UpdateUser(ctx, admin.ID, uuid.New(), task.UserUpdate{IsActive: ptr(false)})
	wantErr(t, "UpdateUser(unknown)", err, task.ErrNotFound)
}

func TestUpdateUserAdminFlag(t *testing.T) {
	db, _ := pgtest.Open(t)
	u := newUser(t, db)
	s, _ := newSession(t, db, u.ID)
	got, err := db.Users().UpdateUser(t.Context(), newAdmin(t, db).ID, u.ID, task.UserUpdate{IsAdmin: ptr(true)})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if !got.IsAdmin || !got.IsActive {
		t.Fatalf("is_admin, is_active = %v, %v, want true, true", got.IsAdmin, got.IsActive)
	}
	if isRevoked(t, db, s.ID) {
		t.Fatalf("IsRevoked after promotion = true, want false")
	}
}

func TestSetPassword(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	u, other := newUser(t, db), newUser(t, db)
	s1, h1 := newSession(t, db, u.ID)
	keep, keepHash := newSession(t, db, u.ID)
	s3, _ := newSession(t, db, u.ID)
	otherSess, _ := newSession(t, db, other.ID)

	if err := db.Users().SetPassword(ctx, u.ID, "argon2id$new", keep.ID, false); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	got, err := db.Users().FindUserByID(ctx, u.ID)
	if err != nil {
		t.Fatalf("FindUserByID: %v", err)
	}
	if got.PasswordHash != "argon2id$new" {
		t.Fatalf("PasswordHash = %q, want %q", got.PasswordHash, "argon2id$new")
	}

	tests := []struct {
		name string
		id   uuid.UUID
		want bool
	}{
		{"first other session", s1.ID, true},
		{"kept session", keep.ID, false},
		{"third session", s3.ID, true},
		{"another user's session", otherSess.ID, false},
	}
	for _, tt := range tests {
		if got := isRevoked(t, db, tt.id); got != tt.want {
			t.Fatalf("%s: IsRevoked = %v, want %v", tt.name, got, tt.want)
		}
	}
	live := liveSessions(t, db, u.ID)
	if len(live) != 1 || live[0].ID != keep.ID {
		t.Fatalf("live sessions = %v, want only %v", live, keep.ID)
	}
	if _, err := db.Sessions().RotateRefreshToken(ctx, keepHash, newHash(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("RotateRefreshToken of the kept session: %v", err)
	}
	_, err = db.Sessions().RotateRefreshToken(ctx, h1, newHash(), time.Now().Add(time.Hour))
	wantCode(t, "RotateRefreshToken of a revoked session", err, task.EINVALIDTOKEN)

	wantErr(t, "SetPassword(unknown)", db.Users().SetPassword(ctx, uuid.New(), "x", uuid.Nil, false), task.ErrNotFound)
}

// TestCreateUserRace registers one name in many spellings at once: the
// database, not a prior lookup, must keep exactly one.
func TestCreateUserRace(t *testing.T) {
	db, _ := pgtest.Open(t)
	names := []string{"racer", "Racer", "RACER", "rAcEr", "racER", "RACEr", "Racer", "racer"}
	errs := race(len(names), func(i int) error {
		return db.Users().CreateUser(t.Context(), &task.User{Username: names[i], PasswordHash: "h"})
	})

	created := 0
	for i, err := range errs {
		if err == nil {
			created++
			continue
		}
		wantCode(t, names[i], err, task.EINVALID)
		if len(task.ErrorFields(err)["username"]) == 0 {
			t.Fatalf("%s: fields = %v, want a message on username", names[i], task.ErrorFields(err))
		}
	}
	if created != 1 {
		t.Fatalf("created = %d, want 1", created)
	}
}

// TestUpdateUserNeedsAnActiveAdmin: the store re-reads the acting admin,
// so an admin demoted or deactivated a moment ago can no longer act.
func TestUpdateUserNeedsAnActiveAdmin(t *testing.T) {
	db, dsn := pgtest.Open(t)
	ctx := t.Context()
	conn := sqlConn(t, dsn)
	newAdmin(t, db) // an admin remains whatever the actors below are
	target := newUser(t, db)
	demoted, deactivated := newAdmin(t, db), newAdmin(t, db)
	execSQL(t, conn, `UPDATE users SET is_admin = false WHERE id = $1`, demoted.ID)
	execSQL(t, conn, `UPDATE users SET is_active = false WHERE id = $1`, deactivated.ID)

	for _, tt := range []struct {
		name  string
		actor uuid.UUID
	}{
		{"ordinary user", newUser(t, db).ID},
		{"demoted admin", demoted.ID},
		{"deactivated admin", deactivated.ID},
		{"unknown user", uuid.New()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Users().UpdateUser(ctx, tt.actor, target.ID, task.UserUpdate{IsAdmin: ptr(true)})
			wantErr(t, "UpdateUser", err, task.ErrForbidden)
			if got, err := db.Users().FindUserByID(ctx, target.ID); err != nil || got.IsAdmin {
				t.Fatalf("target after a refused change: %+v, %v; want not admin", got, err)
			}
		})
	}
}

// TestLastActiveAdminRemains: no change may leave the service without an
// active administrator; the refused change leaves everything as it was.
func TestLastActiveAdminRemains(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	only := newAdmin(t, db)
	s, _ := newSession(t, db, only.ID)

	for _, upd := range []task.UserUpdate{{IsAdmin: ptr(false)}, {IsActive: ptr(false)}, {IsAdmin: ptr(false), IsActive: ptr(false)}} {
		_, err := db.Users().UpdateUser(ctx, only.ID, only.ID, upd)
		wantCode(t, fmt.Sprintf("UpdateUser(is_admin %v, is_active %v) of the last admin", upd.IsAdmin != nil, upd.IsActive != nil), err, task.ECONFLICT)
	}
	if got, err := db.Users().FindUserByID(ctx, only.ID); err != nil || !got.IsAdmin || !got.IsActive {
		t.Fatalf("last admin after refused changes = %+v, %v; want an active admin", got, err)
	}
	if isRevoked(t, db, s.ID) {
		t.Fatalf("a refused deactivation revoked the admin's session")
	}

	second := newAdmin(t, db)
	if _, err := db.Users().UpdateUser(ctx, only.ID, second.ID, task.UserUpdate{IsActive: ptr(false)}); err != nil {
		t.Fatalf("UpdateUser(deactivate the second admin): %v", err)
	}
	_, err := db.Users().UpdateUser(ctx, only.ID, only.ID, task.UserUpdate{IsAdmin: ptr(false)})
	wantCode(t, "UpdateUser(demote the last active admin)", err, task.ECONFLICT)
}

// TestAdminsDemotingEachOther: two admins, the only ones, demote (or
// deactivate) each other at the same moment. Exactly one change wins and
// one admin remains, every time.
func TestAdminsDemotingEachOther(t *testing.T) {
	db, dsn := pgtest.Open(t)
	ctx := t.Context()
	conn := sqlConn(t, dsn)
	activeAdmins := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM users WHERE is_admin AND is_active`).Scan(&n); err != nil {
			t.Fatalf("count admins: %v", err)
		}
		return n
	}

	for round := range 50 {
		a, b := newAdmin(t, db), newAdmin(t, db)
		what, upd := "demote", task.UserUpdate{IsAdmin: ptr(false)}
		if round%2 == 1 {
			what, upd = "deactivate", task.UserUpdate{IsActive: ptr(false)}
		}
		var errA, errB error
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; _, errA = db.Users().UpdateUser(ctx, a.ID, b.ID, upd) })
		wg.Go(func() { <-start; _, errB = db.Users().UpdateUser(ctx, b.ID, a.ID, upd) })
		close(start)
		wg.Wait()

		failed := 0
		for _, err := range []error{errA, errB} {
			if err == nil {
				continue
			}
			failed++
			if code := task.ErrorCode(err); code != task.EFORBIDDEN && code != task.ECONFLICT {
				t.Fatalf("round %d: err = %v, want permission_denied or conflict", round, err)
			}
		}
		if failed != 1 {
			t.Fatalf("round %d (%s): errors %v and %v, want exactly one to fail", round, what, errA, errB)
		}
		if n := activeAdmins(); n != 1 {
			t.Fatalf("round %d (%s): %d active admins left, want 1", round, what, n)
		}
		// The next pair must be the only admins again.
		execSQL(t, conn, `DELETE FROM users WHERE id IN ($1, $2)`, a.ID, b.ID)
	}
}

// TestSetPasswordRevokesKeys: a password change revokes the user's API
// keys unless asked not to, in the same change.
func TestSetPasswordRevokesKeys(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	for _, revoke := range []bool{true, false} {
		t.Run(fmt.Sprint(revoke), func(t *testing.T) {
			u, other := newUser(t, db), newUser(t, db)
			keys := []*task.APIKey{newKey(t, db, u.ID), newKey(t, db, u.ID)}
			otherKey := newKey(t, db, other.ID)
			if err := db.Users().SetPassword(ctx, u.ID, "argon2id$new", uuid.Nil, revoke); err != nil {
				t.Fatalf("SetPassword: %v", err)
			}
			for i, k := range keys {
				_, err := db.Keys().FindKeyByPrefix(ctx, k.Prefix)
				if revoke {
					wantErr(t, fmt.Sprintf("FindKeyByPrefix(key %d)", i), err, task.ErrNotFound)
				} else if err != nil {
					t.Fatalf("FindKeyByPrefix(key %d) after a change that keeps keys: %v", i, err)
				}
			}
			if listed := len(listedKeys(t, db, u.ID)); revoke && listed != 0 || !revoke && listed != 2 {
				t.Fatalf("FindKeys lists %d keys after SetPassword(revokeKeys=%v)", listed, revoke)
			}
			if _, err := db.Keys().FindKeyByPrefix(ctx, otherKey.Prefix); err != nil {
				t.Fatalf("another user's key: %v", err)
			}
		})
	}
}
