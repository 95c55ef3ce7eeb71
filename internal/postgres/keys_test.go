package postgres_test

import (
	"bytes"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/task"
)

var keySeq atomic.Uint64

// newKey creates a live key for userID with a unique prefix.
func newKey(tb testing.TB, db *postgres.DB, userID uuid.UUID) *task.APIKey {
	tb.Helper()
	return newKeyExpiring(tb, db, userID, nil)
}

func newKeyExpiring(tb testing.TB, db *postgres.DB, userID uuid.UUID, expires *time.Time) *task.APIKey {
	tb.Helper()
	n := keySeq.Add(1)
	k := &task.APIKey{UserID: userID, Name: fmt.Sprintf("key %d", n), Prefix: fmt.Sprintf("tm_%08d", n),
		Hash: newHash(), Scopes: []string{task.ScopeTasksRead}, ExpiresAt: expires}
	if err := db.Keys().CreateKey(tb.Context(), k); err != nil {
		tb.Fatalf("CreateKey: %v", err)
	}
	return k
}

// listedKeys follows FindKeys page by page and returns every key it lists.
func listedKeys(tb testing.TB, db *postgres.DB, userID uuid.UUID) []*task.APIKey {
	tb.Helper()
	return allPages(tb, "FindKeys", func(cur *task.Cursor) (*task.Page[*task.APIKey], error) {
		return db.Keys().FindKeys(tb.Context(), userID, 4, cur)
	})
}

func TestCreateAndFindKeys(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	u, other := newUser(t, db), newUser(t, db)

	k1 := &task.APIKey{UserID: u.ID, Name: "ci", Prefix: "tm_ci0001", Hash: []byte{1, 2, 3},
		Scopes: []string{task.ScopeTasksRead, task.ScopeTasksWrite}}
	if err := db.Keys().CreateKey(ctx, k1); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if k1.ID == uuid.Nil || k1.CreatedAt.IsZero() {
		t.Fatalf("created key = %+v, want id and created_at filled in", k1)
	}
	created := []*task.APIKey{k1}
	for range 5 {
		created = append(created, newKey(t, db, u.ID))
	}
	newKey(t, db, other.ID)

	keys := listedKeys(t, db, u.ID)
	want := ids(created)
	slices.Reverse(want)
	if got := ids(keys); !slices.Equal(got, want) {
		t.Fatalf("FindKeys = %v, want newest first %v", got, want)
	}
	got := keys[len(keys)-1]
	if got.Name != "ci" || got.Prefix != "tm_ci0001" || !bytes.Equal(got.Hash, []byte{1, 2, 3}) ||
		!slices.Equal(got.Scopes, k1.Scopes) || got.ExpiresAt != nil || got.LastUsedAt != nil {
		t.Fatalf("stored key = %+v, want %+v", got, k1)
	}

	revoked := created[2]
	if err := db.Keys().RevokeKey(ctx, u.ID, revoked.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	keys = listedKeys(t, db, u.ID)
	want = slices.DeleteFunc(want, func(id uuid.UUID) bool { return id == revoked.ID })
	if got := ids(keys); !slices.Equal(got, want) {
		t.Fatalf("FindKeys after revoking one = %v, want %v", got, want)
	}
	wantErr(t, "RevokeKey twice", db.Keys().RevokeKey(ctx, u.ID, revoked.ID), task.ErrNotFound)
}

func TestFindKeyByPrefix(t *testing.T) {
	db, dsn := pgtest.Open(t)
	ctx := t.Context()
	conn := sqlConn(t, dsn)
	u, inactive := newUser(t, db), newUser(t, db)

	live := newKey(t, db, u.ID)
	future := newKeyExpiring(t, db, u.ID, ptr(time.Now().Add(time.Hour)))
	expired := newKeyExpiring(t, db, u.ID, ptr(time.Now().Add(-time.Minute)))
	revoked := newKey(t, db, u.ID)
	if err := db.Keys().RevokeKey(ctx, u.ID, revoked.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	ofInactive := newKey(t, db, inactive.ID)
	// Deactivate without UpdateUser, which would also revoke the key: the
	// lookup itself must refuse keys of inactive users.
	execSQL(t, conn, `UPDATE users SET is_active = false WHERE id = $1`, inactive.ID)

	tests := []struct {
		name   string
		prefix string
		want   *task.APIKey
	}{
		{"live", live.Prefix, live},
		{"expires later", future.Prefix, future},
		{"expired", expired.Prefix, nil},
		{"revoked", revoked.Prefix, nil},
		{"inactive user", ofInactive.Prefix, nil},
		{"unknown", "tm_nothing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Keys().FindKeyByPrefix(ctx, tt.prefix)
			if tt.want == nil {
				wantErr(t, "FindKeyByPrefix", err, task.ErrNotFound)
				return
			}
			if err != nil {
				t.Fatalf("FindKeyByPrefix: %v", err)
			}
			if got.ID != tt.want.ID || got.UserID != tt.want.UserID || !bytes.Equal(got.Hash, tt.want.Hash) {
				t.Fatalf("key = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRevokeKeyOfAnotherUser(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	alice, bob := newUser(t, db), newUser(t, db)
	k := newKey(t, db, alice.ID)

	wantErr(t, "RevokeKey by another user", db.Keys().RevokeKey(ctx, bob.ID, k.ID), task.ErrNotFound)
	if _, err := db.Keys().FindKeyByPrefix(ctx, k.Prefix); err != nil {
		t.Fatalf("FindKeyByPrefix after a foreign revoke: %v", err)
	}
	wantErr(t, "RevokeKey(unknown)", db.Keys().RevokeKey(ctx, alice.ID, uuid.New()), task.ErrNotFound)
}

func TestTouchKey(t *testing.T) {
	db, dsn := pgtest.Open(t)
	ctx := t.Context()
	conn := sqlConn(t, dsn)
	u := newUser(t, db)
	k := newKey(t, db, u.ID)

	lastUsed := func() *time.Time {
		t.Helper()
		got, err := db.Keys().FindKeyByPrefix(ctx, k.Prefix)
		if err != nil {
			t.Fatalf("FindKeyByPrefix: %v", err)
		}
		return got.LastUsedAt
	}
	if got := lastUsed(); got != nil {
		t.Fatalf("LastUsedAt before use = %v, want nil", got)
	}

	before := time.Now()
	if err := db.Keys().TouchKey(ctx, k.ID); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	first := lastUsed()
	if first == nil || first.Before(before.Add(-time.Second)) || first.After(time.Now().Add(time.Second)) {
		t.Fatalf("LastUsedAt = %v, want about %v", first, before)
	}

	// Within a minute a touch does not write again.
	if err := db.Keys().TouchKey(ctx, k.ID); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	if got := lastUsed(); got == nil || !got.Equal(*first) {
		t.Fatalf("LastUsedAt after a second touch = %v, want unchanged %v", got, first)
	}

	// After a minute it does. This instance remembers its own touch by the
	// wall clock, so the time travel is watched from another instance.
	execSQL(t, conn, `UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, k.ID)
	if err := db.Keys().TouchKey(ctx, k.ID); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	if got := lastUsed(); got == nil || time.Since(*got) < time.Minute {
		t.Fatalf("this instance wrote again within its minute: LastUsedAt = %v", got)
	}
	if err := openInstance(t, dsn).Keys().TouchKey(ctx, k.ID); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	if got := lastUsed(); got == nil || time.Since(*got) > time.Minute {
		t.Fatalf("LastUsedAt after a touch two minutes later = %v, want about now", got)
	}
}

// TestFindKeysPages pages through a user's keys newest first, forwards
// and back: revoked keys are left out, expired ones stay listed.
func TestFindKeysPages(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	u, other := newUser(t, db), newUser(t, db)
	var want []*task.APIKey
	for i := range 8 {
		switch i {
		case 2:
			k := newKey(t, db, u.ID)
			if err := db.Keys().RevokeKey(ctx, u.ID, k.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
		case 5:
			want = append(want, newKeyExpiring(t, db, u.ID, ptr(time.Now().Add(-time.Hour))))
		default:
			want = append(want, newKey(t, db, u.ID))
		}
	}
	newKey(t, db, other.ID)
	slices.Reverse(want)

	var pages []*task.Page[*task.APIKey]
	var cur *task.Cursor
	for len(pages) < 10 {
		p, err := db.Keys().FindKeys(ctx, u.ID, 3, cur)
		if err != nil {
			t.Fatalf("FindKeys: %v", err)
		}
		pages = append(pages, p)
		if p.Next == nil {
			break
		}
		cur = p.Next
	}
	var got []*task.APIKey
	var sizes []int
	for _, p := range pages {
		got = append(got, p.Items...)
		sizes = append(sizes, len(p.Items))
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) || !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("pages of %v = %v, want pages of [3 3 1] newest first %v", sizes, ids(got), ids(want))
	}
	if pages[0].Previous != nil {
		t.Fatalf("first page Previous = %+v, want nil", pages[0].Previous)
	}
	if expired := got[2]; expired.ExpiresAt == nil || expired.ExpiresAt.After(time.Now()) {
		t.Fatalf("expired key listed with ExpiresAt = %v, want its past expiry", expired.ExpiresAt)
	}
	for i := 2; i > 0; i-- {
		p, err := db.Keys().FindKeys(ctx, u.ID, 3, pages[i].Previous)
		if err != nil {
			t.Fatalf("FindKeys(previous of page %d): %v", i+1, err)
		}
		if !slices.Equal(ids(p.Items), ids(pages[i-1].Items)) {
			t.Fatalf("previous of page %d = %v, want %v", i+1, ids(p.Items), ids(pages[i-1].Items))
		}
		if (p.Previous == nil) != (i == 1) {
			t.Fatalf("previous of page %d: Previous = %v", i+1, p.Previous)
		}
	}

	_, err := db.Keys().FindKeys(ctx, u.ID, 3, &task.Cursor{Key: "not a time", ID: want[0].ID})
	wantCode(t, "FindKeys with a malformed cursor", err, task.EBADREQUEST)
}

// TestKeyQuota: a user holds at most task.MaxKeysPerUser live keys, also
// when creations race; revoked and expired keys leave room.
func TestKeyQuota(t *testing.T) {
	db, dsn := pgtest.Open(t)
	ctx := t.Context()
	conn := sqlConn(t, dsn)
	create := func(u *task.User) (*task.APIKey, error) {
		n := keySeq.Add(1)
		k := &task.APIKey{UserID: u.ID, Name: fmt.Sprintf("key %d", n), Prefix: fmt.Sprintf("tm_%08d", n),
			Hash: newHash(), Scopes: []string{task.ScopeTasksRead}}
		return k, db.Keys().CreateKey(ctx, k)
	}

	u, other := newUser(t, db), newUser(t, db)
	var keys []*task.APIKey
	for range task.MaxKeysPerUser - 1 {
		keys = append(keys, newKey(t, db, u.ID))
	}
	newKeyExpiring(t, db, u.ID, ptr(time.Now().Add(time.Hour)))
	_, err := create(u)
	wantErr(t, "CreateKey over the quota", err, task.ErrQuotaExceeded)
	wantCode(t, "CreateKey over the quota", err, task.EQUOTA)
	newKey(t, db, other.ID)

	if err := db.Keys().RevokeKey(ctx, u.ID, keys[0].ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	newKey(t, db, u.ID)
	_, err = create(u)
	wantErr(t, "CreateKey over the quota after a revoke", err, task.ErrQuotaExceeded)

	execSQL(t, conn, `UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1`, keys[1].ID)
	newKey(t, db, u.ID)
	_, err = create(u)
	wantErr(t, "CreateKey over the quota after an expiry", err, task.ErrQuotaExceeded)

	t.Run("concurrent creates stop exactly at the quota", func(t *testing.T) {
		u := newUser(t, db)
		for range task.MaxKeysPerUser - 3 {
			newKey(t, db, u.ID)
		}
		const n = 12
		errs := race(n, func(int) error {
			_, err := create(u)
			return err
		})
		ok := succeeded(t, errs, task.ErrQuotaExceeded)
		if live := len(listedKeys(t, db, u.ID)); ok != 3 || live != task.MaxKeysPerUser {
			t.Fatalf("%d of %d racers created a key, %d keys live; want 3 and %d", ok, n, live, task.MaxKeysPerUser)
		}
	})
}
