package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/task"
)

func newClient(tb testing.TB, db *postgres.DB) *task.OAuthClient {
	tb.Helper()
	c := &task.OAuthClient{ClientID: fmt.Sprintf("client%d", userSeq.Add(1)), Name: "Task Importer",
		SecretHash: newHash(), RedirectURIs: []string{"https://app.example/cb"},
		GrantTypes: []string{task.GrantAuthorizationCode, task.GrantRefreshToken}, Scopes: task.OAuthScopes}
	if err := db.OAuth().CreateClient(tb.Context(), c); err != nil {
		tb.Fatalf("CreateClient: %v", err)
	}
	return c
}

// newCode runs an auth request for u up to its code and returns the code hash.
func newCode(tb testing.TB, db *postgres.DB, c *task.OAuthClient, u *task.User) (*task.AuthRequest, []byte) {
	tb.Helper()
	ctx := tb.Context()
	a := &task.AuthRequest{ID: uuid.New(), ClientID: c.ID, RedirectURI: c.RedirectURIs[0], Scopes: []string{"tasks:read"},
		CodeChallenge: "challenge"}
	if err := db.OAuth().CreateAuthRequest(ctx, a); err != nil {
		tb.Fatalf("CreateAuthRequest: %v", err)
	}
	browser := newHash()
	if err := db.OAuth().ApproveAuthRequest(ctx, a.ID, browser); task.ErrorCode(err) != task.ENOTFOUND {
		tb.Fatalf("ApproveAuthRequest before sign-in: %v, want not found", err)
	}
	if err := db.OAuth().SignInAuthRequest(ctx, a.ID, u.ID, time.Now(), []string{"pwd"}, browser); task.ErrorCode(err) != task.ENOTFOUND {
		tb.Fatalf("SignInAuthRequest before any browser showed the page: %v, want not found", err)
	}
	if err := db.OAuth().BindAuthRequest(ctx, a.ID, browser); err != nil {
		tb.Fatalf("BindAuthRequest: %v", err)
	}
	if err := db.OAuth().BindAuthRequest(ctx, a.ID, browser); err != nil {
		tb.Fatalf("BindAuthRequest again from the same browser: %v", err)
	}
	if err := db.OAuth().BindAuthRequest(ctx, a.ID, newHash()); task.ErrorCode(err) != task.ENOTFOUND {
		tb.Fatalf("BindAuthRequest from another browser: %v, want not found", err)
	}
	if err := db.OAuth().SignInAuthRequest(ctx, a.ID, u.ID, time.Now(), []string{"pwd"}, newHash()); task.ErrorCode(err) != task.ENOTFOUND {
		tb.Fatalf("SignInAuthRequest from another browser: %v, want not found", err)
	}
	if err := db.OAuth().SignInAuthRequest(ctx, a.ID, u.ID, time.Now(), []string{"pwd"}, browser); err != nil {
		tb.Fatalf("SignInAuthRequest: %v", err)
	}
	if err := db.OAuth().ApproveAuthRequest(ctx, a.ID, newHash()); task.ErrorCode(err) != task.ENOTFOUND {
		tb.Fatalf("ApproveAuthRequest from another browser: %v, want not found", err)
	}
	if err := db.OAuth().ApproveAuthRequest(ctx, a.ID, browser); err != nil {
		tb.Fatalf("ApproveAuthRequest: %v", err)
	}
	code := newHash()
	if err := db.OAuth().SaveAuthCode(ctx, a.ID, code); err != nil {
		tb.Fatalf("SaveAuthCode: %v", err)
	}
	return a, code
}

func grantFor(tb testing.TB, db *postgres.DB, a *task.AuthRequest, refresh []byte) *task.Grant {
	tb.Helper()
	g := &task.Grant{ClientID: a.ClientID, UserID: a.UserID, Scopes: a.Scopes, AuthTime: time.Now(),
		ExpiresAt: time.Now().Add(time.Hour)}
	if err := db.OAuth().CreateGrant(tb.Context(), g, &a.ID, refresh, time.Now().Add(time.Hour)); err != nil {
		tb.Fatalf("CreateGrant: %v", err)
	}
	return g
}

func TestAuthCodeWorksOnceAndReuseRevokesItsGrant(t *testing.T) {
	db, _ := pgtest.Open(t)
	u := newUser(t, db)
	c := newClient(t, db)
	_, code := newCode(t, db, c, u)

	errs := race(5, func(int) error { _, err := db.OAuth().RedeemAuthCode(t.Context(), code); return err })
	if n := succeeded(t, errs, task.ErrTokenReused); n != 1 {
		t.Fatalf("%d concurrent redemptions succeeded, want 1", n)
	}
	_, code = newCode(t, db, c, u)
	a, err := db.OAuth().RedeemAuthCode(t.Context(), code)
	if err != nil {
		t.Fatalf("RedeemAuthCode: %v", err)
	}
	if a.UserID == nil || *a.UserID != u.ID || a.ClientID != c.ID || a.Client != c.ClientID || !a.Done {
		t.Fatalf("redeemed request = %+v, want user %s and client %s", a, u.ID, c.ID)
	}
	g := grantFor(t, db, a, nil)
	if isRevoked(t, db, g.SessionID) {
		t.Fatal("fresh grant is revoked")
	}
	_, err = db.OAuth().RedeemAuthCode(t.Context(), code)
	wantErr(t, "second redemption", err, task.ErrTokenReused)
	if !isRevoked(t, db, g.SessionID) {
		t.Fatal("the grant of a code redeemed twice is not revoked")
	}
	_, err = db.OAuth().RedeemAuthCode(t.Context(), newHash())
	wantErr(t, "unknown code", err, task.ErrInvalidToken)
}

func TestExpiredCodeIsRefused(t *testing.T) {
	db, dsn := pgtest.Open(t)
	_, code := newCode(t, db, newClient(t, db), newUser(t, db))
	execSQL(t, sqlConn(t, dsn), `UPDATE oauth_auth_requests SET code_expires_at = now() - interval '1 second' WHERE code_hash = $1`, code)
	_, err := db.OAuth().RedeemAuthCode(t.Context(), code)
	wantErr(t, "expired code", err, task.ErrInvalidToken)
}

func TestRefreshReuseRevokesTheFamily(t *testing.T) {
	db, _ := pgtest.Open(t)
	u := newUser(t, db)
	_, code := newCode(t, db, newClient(t, db), u)
	a, err := db.OAuth().RedeemAuthCode(t.Context(), code)
	if err != nil {
		t.Fatal(err)
	}
	first := newHash()
	g := grantFor(t, db, a, first)
	if got, err := db.OAuth().FindGrantByRefreshToken(t.Context(), first); err != nil || got.SessionID != g.SessionID {
		t.Fatalf("FindGrantByRefreshToken = %v, %v; want grant %s", got, err, g.SessionID)
	}
	second := newHash()
	if _, err := db.Sessions().RotateRefreshToken(t.Context(), first, second, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	_, err = db.OAuth().FindGrantByRefreshToken(t.Context(), first)
	wantErr(t, "reused refresh token", err, task.ErrTokenReused)
	if !isRevoked(t, db, g.SessionID) {
		t.Fatal("reuse left the family alive")
	}
	_, err = db.OAuth().FindGrantByRefreshToken(t.Context(), second)
	wantErr(t, "refresh token of a revoked family", err, task.ErrInvalidToken)
}

func TestRevocationsReachOAuthGrants(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	cases := map[string]func(u *task.User, c *task.OAuthClient) error{
		"logout all": func(u *task.User, _ *task.OAuthClient) error {
			return db.Sessions().RevokeSessions(ctx, u.ID, uuid.Nil)
		},
		"password": func(u *task.User, _ *task.OAuthClient) error {
			return db.Users().SetPassword(ctx, u.ID, "x", uuid.Nil, false)
		},
		"client gone": func(_ *task.User, c *task.OAuthClient) error { return db.OAuth().DeleteClient(ctx, c.ID) },
		"withdrawn": func(u *task.User, c *task.OAuthClient) error {
			return db.OAuth().WithdrawConsent(ctx, u.ID, c.ClientID)
		},
		"withdraw all": func(u *task.User, _ *task.OAuthClient) error { return db.OAuth().WithdrawConsent(ctx, u.ID, "") },
		"deactivated": func(u *task.User, _ *task.OAuthClient) error {
			off := false
			_, err := db.Users().UpdateUser(ctx, newAdmin(t, db).ID, u.ID, task.UserUpdate{IsActive: &off})
			return err
		},
	}
	for name, revoke := range cases {
		t.Run(name, func(t *testing.T) {
			u := newUser(t, db)
			c := newClient(t, db)
			if err := db.OAuth().SaveConsent(ctx, u.ID, c.ID, []string{"tasks:read"}); err != nil {
				t.Fatal(err)
			}
			_, code := newCode(t, db, c, u)
			a, err := db.OAuth().RedeemAuthCode(ctx, code)
			if err != nil {
				t.Fatal(err)
			}
			g := grantFor(t, db, a, newHash())
			if err := revoke(u, c); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if !isRevoked(t, db, g.SessionID) {
				t.Fatal("grant still live")
			}
			if _, err := db.OAuth().FindGrant(ctx, g.SessionID); task.ErrorCode(err) != task.EINVALIDTOKEN {
				t.Fatalf("FindGrant after revocation: %v", err)
			}
		})
	}
}

func TestClientCredentialsGrantAndConsents(t *testing.T) {
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	c := newClient(t, db)
	g := &task.Grant{ClientID: c.ID, Scopes: []string{"tasks:read"}, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Minute)}
	if err := db.OAuth().CreateGrant(ctx, g, nil, nil, time.Time{}); err != nil {
		t.Fatalf("CreateGrant(client credentials): %v", err)
	}
	if got, err := db.OAuth().FindGrant(ctx, g.SessionID); err != nil || got.UserID != nil {
		t.Fatalf("FindGrant = %+v, %v; want a grant with no user", got, err)
	}
	u := newUser(t, db)
	if ok, _ := db.OAuth().HasConsent(ctx, u.ID, c.ID, []string{"tasks:read"}); ok {
		t.Fatal("consent before any was given")
	}
	if err := db.OAuth().SaveConsent(ctx, u.ID, c.ID, []string{"tasks:write", "tasks:read"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.OAuth().HasConsent(ctx, u.ID, c.ID, []string{"tasks:read"}); !ok {
		t.Fatal("consent to a superset does not cover a subset")
	}
	if ok, _ := db.OAuth().HasConsent(ctx, u.ID, c.ID, []string{"tasks:read", "email"}); ok {
		t.Fatal("consent covers a scope never granted")
	}
	list, err := db.OAuth().FindConsents(ctx, u.ID)
	if err != nil || len(list) != 1 || list[0].ClientID != c.ClientID {
		t.Fatalf("FindConsents = %v, %v", list, err)
	}
	wantErr(t, "withdraw from a stranger", db.OAuth().WithdrawConsent(ctx, u.ID, "nobody"), task.ErrNotFound)
	if got := liveSessions(t, db, u.ID); len(got) != 0 {
		t.Fatalf("OAuth grants listed among sessions: %v", got)
	}
}

// TestFindGrantByUnusedRefreshToken: introspection's lookup answers for an
// unused, unexpired refresh token of a live grant only, and looking at a
// used one is no reuse: its family lives on.
func TestFindGrantByUnusedRefreshToken(t *testing.T) {
	db, dsn := pgtest.Open(t)
	ctx := t.Context()
	u := newUser(t, db)
	_, code := newCode(t, db, newClient(t, db), u)
	a, err := db.OAuth().RedeemAuthCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	first := newHash()
	g := grantFor(t, db, a, first)
	got, err := db.OAuth().FindGrantByUnusedRefreshToken(ctx, first)
	if err != nil || got.SessionID != g.SessionID || got.UserID == nil || *got.UserID != u.ID ||
		time.Until(got.ExpiresAt) < 59*time.Minute || time.Until(got.ExpiresAt) > time.Hour {
		t.Fatalf("FindGrantByUnusedRefreshToken = %+v, %v; want grant %s expiring with its token in an hour", got, err, g.SessionID)
	}
	// A shorter-lived token than its grant: the token's expiry counts.
	execSQL(t, sqlConn(t, dsn), `UPDATE refresh_tokens SET expires_at = now() + interval '5 minutes' WHERE token_hash = $1`, first)
	if got, err := db.OAuth().FindGrantByUnusedRefreshToken(ctx, first); err != nil || time.Until(got.ExpiresAt) > 5*time.Minute {
		t.Fatalf("ExpiresAt = %v, %v; want the token's, in 5 minutes", got, err)
	}
	second := newHash()
	if _, err := db.Sessions().RotateRefreshToken(ctx, first, second, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	_, err = db.OAuth().FindGrantByUnusedRefreshToken(ctx, first)
	wantErr(t, "rotated-away refresh token", err, task.ErrInvalidToken)
	if isRevoked(t, db, g.SessionID) {
		t.Fatal("looking at a used refresh token revoked its family")
	}
	if got, err := db.OAuth().FindGrantByUnusedRefreshToken(ctx, second); err != nil || got.SessionID != g.SessionID {
		t.Fatalf("the rotated-in refresh token: %+v, %v", got, err)
	}
	execSQL(t, sqlConn(t, dsn), `UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, second)
	_, err = db.OAuth().FindGrantByUnusedRefreshToken(ctx, second)
	wantErr(t, "expired refresh token", err, task.ErrInvalidToken)

	third := newHash()
	g = grantFor(t, db, redeemed(t, db, u), third)
	if err := db.OAuth().RevokeGrant(ctx, g.ClientID, g.SessionID); err != nil {
		t.Fatal(err)
	}
	_, err = db.OAuth().FindGrantByUnusedRefreshToken(ctx, third)
	wantErr(t, "refresh token of a revoked grant", err, task.ErrInvalidToken)
	_, err = db.OAuth().FindGrantByUnusedRefreshToken(ctx, newHash())
	wantErr(t, "unknown refresh token", err, task.ErrInvalidToken)
}

// redeemed is a redeemed auth request of u for a new client.
func redeemed(tb testing.TB, db *postgres.DB, u *task.User) *task.AuthRequest {
	tb.Helper()
	_, code := newCode(tb, db, newClient(tb, db), u)
	a, err := db.OAuth().RedeemAuthCode(tb.Context(), code)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}
