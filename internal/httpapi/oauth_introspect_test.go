package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/acme/taskmanager/internal/auth"
)

const refreshTokenType = "urn:ietf:params:oauth:token-type:refresh_token"

// TestIntrospectRefreshTokens: a live refresh token is active to its own
// client, with what it grants; rotated away, expired, revoked or another
// client's, it is inactive, and looking at it changes nothing.
func TestIntrospectRefreshTokens(t *testing.T) {
	o := newOAuthEnv(t, nil)
	a, b := o.register(t, nil), o.register(t, nil)
	u := o.newUser()
	conf := o.config(a, "tasks:read", "offline_access")
	tok := o.codeFlow(t, conf, u)

	got := o.introspect(t, a, tok.RefreshToken)
	exp, _ := got["exp"].(float64)
	week := time.Now().Add(7 * 24 * time.Hour)
	if got["active"] != true || got["client_id"] != a.ClientID || got["sub"] != u.id || got["username"] != u.username ||
		got["scope"] != "tasks:read offline_access" || got["token_type"] != refreshTokenType ||
		time.Unix(int64(exp), 0).Before(week.Add(-time.Minute)) || time.Unix(int64(exp), 0).After(week.Add(time.Minute)) {
		t.Fatalf("introspection of a live refresh token = %v, want it active, its scope, client, user and expiry in a week", got)
	}
	if got := o.introspect(t, b, tok.RefreshToken); len(got) != 1 || got["active"] != false {
		t.Fatalf("client B introspecting A's refresh token = %v, want only active false", got)
	}

	// Rotation: the old token is inactive, the new one active, and looking
	// at the old one was no reuse (the family still refreshes).
	fresh, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if got := o.introspect(t, a, tok.RefreshToken); got["active"] != false {
		t.Fatalf("the rotated-away refresh token = %v, want inactive", got)
	}
	if got := o.introspect(t, a, fresh.RefreshToken); got["active"] != true {
		t.Fatalf("the rotated-in refresh token = %v, want active", got)
	}
	if strings.Contains(o.logBuf.String(), `"event":"token_reuse_detected"`) {
		t.Fatal("introspecting a used refresh token was taken for reuse")
	}
	fresher, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh after the old token was introspected: %v", err)
	}

	// A refresh token is no access token to userinfo.
	rq, _ := http.NewRequest("GET", o.base+"/oauth/userinfo", nil)
	rq.Header.Set("Authorization", "Bearer "+fresher.RefreshToken)
	r, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	if read(t, r); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("userinfo with a refresh token: %d, want 401", r.StatusCode)
	}

	// Revoked through /oauth/revoke: inactive, as is its access token.
	o.revoke(t, a, fresher.RefreshToken)
	if got := o.introspect(t, a, fresher.RefreshToken); got["active"] != false {
		t.Fatalf("a revoked refresh token = %v, want inactive", got)
	}
	if got := o.introspect(t, a, fresher.AccessToken); got["active"] != false {
		t.Fatalf("the access token of a revoked refresh token = %v, want inactive", got)
	}

	// Expired.
	late := o.codeFlow(t, conf, u)
	conn, err := pgx.Connect(context.Background(), o.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `UPDATE refresh_tokens SET expires_at = now() - interval '1 second'
		WHERE token_hash = $1`, auth.HashSecret(late.RefreshToken)); err != nil {
		t.Fatal(err)
	}
	if got := o.introspect(t, a, late.RefreshToken); got["active"] != false {
		t.Fatalf("an expired refresh token = %v, want inactive", got)
	}
}

// revoke revokes token as client c (RFC 7009).
func (o *oauthEnv) revoke(t testing.TB, c registered, token string) {
	t.Helper()
	rq, _ := http.NewRequest("POST", o.base+"/oauth/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	rq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rq.SetBasicAuth(c.ClientID, c.ClientSecret)
	r, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	if body := read(t, r); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.StatusCode, body)
	}
}
