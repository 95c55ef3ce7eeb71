package postgres_test

import (
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/task"
)

func newPasskey(userID uuid.UUID) *task.Passkey {
	return &task.Passkey{UserID: userID, Name: "key", CredentialID: []byte(rand.Text()), Credential: []byte(`{"id":"x"}`)}
}

// TestCeremonyIsSpentOnce: of racing answers to one challenge exactly one
// gets the ceremony; an expired one is nobody's; the kind must match.
func TestCeremonyIsSpentOnce(t *testing.T) {
	db, _ := pgtest.Open(t)
	s := db.MFA()
	u := newUser(t, db)
	hash := []byte(rand.Text())
	if err := s.CreateCeremony(t.Context(), &task.Ceremony{ChallengeHash: hash, Kind: task.CeremonyLogin, UserID: u.ID,
		Session: []byte(`{"challenge":"c"}`), ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeCeremony(t.Context(), hash, task.CeremonyRegister); task.ErrorCode(err) != task.ENOTFOUND {
		t.Fatalf("taking a login ceremony as a registration: %v, want not found", err)
	}
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c, err := s.TakeCeremony(t.Context(), hash, task.CeremonyLogin)
			if err == nil && c.UserID == u.ID && string(c.Session) == `{"challenge": "c"}` {
				won.Add(1)
			} else if task.ErrorCode(err) != task.ENOTFOUND {
				t.Errorf("TakeCeremony: %+v, %v", c, err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d racing answers got the ceremony, want 1", won.Load())
	}
	old := []byte(rand.Text())
	if err := s.CreateCeremony(t.Context(), &task.Ceremony{ChallengeHash: old, Kind: task.CeremonyLogin,
		Session: []byte(`{}`), ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeCeremony(t.Context(), old, task.CeremonyLogin); task.ErrorCode(err) != task.ENOTFOUND {
		t.Fatalf("an expired ceremony: %v, want not found", err)
	}
}

// TestPasskeyStore: quota, a credential id registered once, and which
// removal takes passkeys with it.
func TestPasskeyStore(t *testing.T) {
	db, _ := pgtest.Open(t)
	s := db.MFA()
	u, other := newUser(t, db), newUser(t, db)
	first := newPasskey(u.ID)
	if err := s.CreatePasskey(t.Context(), first); err != nil || first.ID == uuid.Nil {
		t.Fatalf("CreatePasskey: %v (id %s)", err, first.ID)
	}
	dup := newPasskey(other.ID)
	dup.CredentialID = first.CredentialID
	wantErr(t, "the same credential id again", s.CreatePasskey(t.Context(), dup), task.ErrPasskeyExists)
	for range task.MaxPasskeysPerUser - 1 {
		if err := s.CreatePasskey(t.Context(), newPasskey(u.ID)); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "one over the quota", s.CreatePasskey(t.Context(), newPasskey(u.ID)), task.ErrQuotaExceeded)
	wantCode(t, "another user's passkey", s.DeletePasskey(t.Context(), other.ID, first.ID), task.ENOTFOUND)
	// The sign counter only moves forward, checked where it is written: the
	// same count twice (a copy racing its original) or a lower one is refused.
	for _, use := range []struct {
		count uint32
		want  bool
	}{{5, true}, {5, false}, {3, false}, {6, true}} {
		record := fmt.Appendf(nil, `{"id": "y", "authenticator": {"signCount": %d}}`, use.count)
		if ok, err := s.UsePasskey(t.Context(), first.ID, record, use.count); err != nil || ok != use.want {
			t.Fatalf("UsePasskey(count %d) = %v, %v; want %v", use.count, ok, err, use.want)
		}
	}
	keys, err := s.FindPasskeys(t.Context(), u.ID)
	if err != nil || len(keys) != task.MaxPasskeysPerUser || keys[0].ID != first.ID || keys[0].LastUsedAt == nil ||
		string(keys[0].Credential) != `{"id": "y", "authenticator": {"signCount": 6}}` {
		t.Fatalf("FindPasskeys = %d keys, first %+v, %v", len(keys), keys[0], err)
	}
	// An authenticator that keeps no counter (always 0) signs in every time.
	for range 2 {
		if ok, err := s.UsePasskey(t.Context(), keys[1].ID, []byte(`{"id": "z"}`), 0); err != nil || !ok {
			t.Fatalf("UsePasskey(count 0) = %v, %v; want true", ok, err)
		}
	}
	if ok, _ := s.UsePasskey(t.Context(), uuid.New(), []byte(`{}`), 1); ok {
		t.Fatal("UsePasskey of a passkey that is gone = true")
	}
	// Removing the authenticator app leaves passkeys and the recovery
	// codes that stand in for them; an admin reset leaves nothing.
	if err := s.ReplaceRecoveryCodes(t.Context(), u.ID, [][]byte{newHash()}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTOTP(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.FindPasskeys(t.Context(), u.ID); len(keys) != task.MaxPasskeysPerUser {
		t.Fatalf("DeleteTOTP removed passkeys: %d left", len(keys))
	}
	if has, err := s.HasRecoveryCodes(t.Context(), u.ID); err != nil || !has {
		t.Fatalf("after DeleteTOTP with passkeys left: HasRecoveryCodes = %v, %v", has, err)
	}
	had, err := s.DeleteMFA(t.Context(), u.ID)
	if err != nil || !had {
		t.Fatalf("DeleteMFA = %v, %v; want true: the user had passkeys", had, err)
	}
	if keys, _ := s.FindPasskeys(t.Context(), u.ID); len(keys) != 0 {
		t.Fatalf("DeleteMFA left %d passkeys", len(keys))
	}
}

// TestRecoveryCodesGoWithTheLastPasskey: removing a user's last second
// factor takes their recovery codes, so they cannot come back with the
// next one; while one is left they stay.
func TestRecoveryCodesGoWithTheLastPasskey(t *testing.T) {
	db, _ := pgtest.Open(t)
	s := db.MFA()
	u := newUser(t, db)
	a, b := newPasskey(u.ID), newPasskey(u.ID)
	for _, p := range []*task.Passkey{a, b} {
		if err := s.CreatePasskey(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReplaceRecoveryCodes(t.Context(), u.ID, [][]byte{newHash(), newHash()}); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*task.Passkey{a, b} {
		if err := s.DeletePasskey(t.Context(), u.ID, p.ID); err != nil {
			t.Fatal(err)
		}
		if has, _ := s.HasRecoveryCodes(t.Context(), u.ID); has != (i == 0) {
			t.Fatalf("after removing passkey %d of 2: HasRecoveryCodes = %v", i+1, has)
		}
	}
}
