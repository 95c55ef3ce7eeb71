package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

func TestRegister(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"missing username", map[string]any{"password": "Sturdy-pass-phrase-42"}, "username"},
		{"missing password", map[string]any{"username": "nopass"}, "password"},
		{"short password", map[string]any{"username": "shorty", "password": "Sh0rt-pass!"}, "password"},
		{"common password", map[string]any{"username": "commoner", "password": "password1234"}, "password"},
		{"password is the username", map[string]any{"username": "samesame_long", "password": "samesame_long"}, "password"},
		{"bad username", map[string]any{"username": "no spaces!", "password": "Sturdy-pass-phrase-42"}, "username"},
		{"bad email", map[string]any{"username": "mailer", "password": "Sturdy-pass-phrase-42", "email": "not-an-email"}, "email"},
		{"self-made admin", map[string]any{"username": "wannabe", "password": "Sturdy-pass-phrase-42", "is_admin": true}, "is_admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(req{method: "POST", path: "/api/register/", body: tt.body}).fieldError(tt.field)
		})
	}

	r := e.do(req{method: "POST", path: "/api/register/", body: map[string]any{
		"username": "Alice", "password": "Sturdy-pass-phrase-42", "email": "alice@example.com"}}).status(http.StatusCreated)
	if strings.Contains(r.Body.String(), "Sturdy") || strings.Contains(r.Body.String(), "hash") {
		t.Fatalf("register answer leaks the password: %s", r.Body.String())
	}
	if cc := r.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q, want no-store", cc)
	}
	got := decodeAs[userJSON](r)
	if got.Username != "Alice" || got.Email != "alice@example.com" || got.IsAdmin {
		t.Fatalf("registered user = %+v", got)
	}
	// Usernames are unique regardless of case.
	e.do(req{method: "POST", path: "/api/register/", body: map[string]any{
		"username": "alice", "password": "Another-sturdy-phrase-7"}}).fieldError("username")
}

// TestUsernameMessages pins the sentences of the one username rule: its
// length and its characters at registration, its length at login.
func TestUsernameMessages(t *testing.T) {
	e := newEnv(t, nil)
	long := strings.Repeat("a", task.MaxUsernameLen+1)
	tests := []struct {
		name, path, username, want string
	}{
		{"register, too long", "/api/register/", long, "Username must be at most 150 characters long."},
		{"register, too long and bad characters", "/api/register/", long + "!", "Username must be at most 150 characters long."},
		{"register, bad characters", "/api/register/", "no spaces!", "Enter a valid username: letters, digits and @/./+/-/_ only."},
		{"register, empty", "/api/register/", "", "Enter a valid username: letters, digits and @/./+/-/_ only."},
		{"login, too long", "/api/token/", long, "Username must be at most 150 characters long."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.do(req{method: "POST", path: tt.path, body: map[string]any{"username": tt.username, "password": "Sturdy-pass-phrase-42"}}).
				errorCode(http.StatusBadRequest, "validation_failed").Error.Fields["username"]
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("username errors = %q, want [%q]", got, tt.want)
			}
		})
	}
}

func TestRegistrationCanBeSwitchedOff(t *testing.T) {
	e := newEnv(t, map[string]string{"REGISTRATION_ENABLED": "false"})
	e.do(req{method: "POST", path: "/api/register/", body: map[string]any{
		"username": "closed", "password": "Sturdy-pass-phrase-42"}}).errorCode(http.StatusNotFound, "not_found")
}

func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	wrong := e.do(req{method: "POST", path: "/api/token/", body: map[string]string{"username": u.username, "password": u.password + "x"}})
	unknown := e.do(req{method: "POST", path: "/api/token/", body: map[string]string{"username": "nobody_here", "password": u.password}})
	a, b := wrong.errorCode(http.StatusUnauthorized, "authentication_failed"), unknown.errorCode(http.StatusUnauthorized, "authentication_failed")
	if a.Error.Message != b.Error.Message {
		t.Fatalf("messages differ: %q vs %q", a.Error.Message, b.Error.Message)
	}
	// Usernames match case-insensitively at login too.
	e.do(req{method: "POST", path: "/api/token/", body: map[string]string{"username": strings.ToUpper(u.username), "password": u.password}}).status(http.StatusOK)
}

func TestTokenShape(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	tok := e.login(u)
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 {
		t.Fatalf("token_type %q expires_in %d, want Bearer 900", tok.TokenType, tok.ExpiresIn)
	}
	// An access token is not a refresh token, nor the other way round.
	e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": tok.Access}}).errorCode(http.StatusUnauthorized, "invalid_token")
	e.do(req{method: "GET", path: "/api/me/", auth: "Bearer " + tok.Refresh}).errorCode(http.StatusUnauthorized, "invalid_token")
	e.do(req{method: "POST", path: "/api/token/verify/", body: map[string]string{"token": tok.Access}}).status(http.StatusOK)
	e.do(req{method: "POST", path: "/api/token/verify/", body: map[string]string{"token": "not.a.token"}}).errorCode(http.StatusUnauthorized, "invalid_token")
}

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	first := tokenPairJSON{Access: u.access, Refresh: u.refresh}
	next := decodeAs[tokenRefreshJSON](e.do(req{method: "POST", path: "/api/token/refresh/",
		body: map[string]string{"refresh": first.Refresh}}).status(http.StatusOK))
	if next.Refresh == first.Refresh || next.Access == first.Access {
		t.Fatal("refresh must rotate both tokens")
	}
	e.do(req{method: "GET", path: "/api/me/", auth: "Bearer " + next.Access}).status(http.StatusOK)

	// The consumed token comes back: the whole session dies.
	e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": first.Refresh}}).errorCode(http.StatusUnauthorized, "invalid_token")
	e.do(req{method: "GET", path: "/api/me/", auth: "Bearer " + next.Access}).errorCode(http.StatusUnauthorized, "invalid_token")
	e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": next.Refresh}}).errorCode(http.StatusUnauthorized, "invalid_token")
	if !strings.Contains(e.logBuf.String(), `"event":"token_reuse_detected"`) {
		t.Fatal("reuse must be logged as a token_reuse_detected event")
	}
}

// TestRefreshRace: many clients refresh one token at once; at most one
// wins, and the family is dead afterwards (the losers look like reuse).
func TestRefreshRace(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	const n = 30
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": u.refresh}}).Code
		}()
	}
	wg.Wait()
	wins := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			wins++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("refresh answered %d, want 200 or 401", c)
		}
	}
	if wins > 1 {
		t.Fatalf("%d concurrent refreshes of one token succeeded, want at most 1", wins)
	}
	e.do(req{method: "GET", path: "/api/me/", auth: u.bearer()}).errorCode(http.StatusUnauthorized, "invalid_token")
}

// TestRevocationKillsAccessTokens: each way of ending sessions makes the
// affected access tokens fail at once, and spares the others.
func TestRevocationKillsAccessTokens(t *testing.T) {
	e := newEnv(t, nil)
	// wantMe checks what GET /api/me/ answers the access token tok.
	wantMe := func(t *testing.T, what, tok string, want int) {
		t.Helper()
		if got := e.do(req{method: "GET", path: "/api/me/", auth: "Bearer " + tok}).Code; got != want {
			t.Fatalf("%s: status = %d, want %d", what, got, want)
		}
	}

	t.Run("logout", func(t *testing.T) {
		u := e.newUser()
		a := e.login(u)
		b := e.login(u)
		e.do(req{method: "POST", path: "/api/token/blacklist/", body: map[string]string{"refresh": a.Refresh}}).status(http.StatusOK)
		wantMe(t, "logged-out access token", a.Access, http.StatusUnauthorized)
		wantMe(t, "other session", b.Access, http.StatusOK)
	})
	t.Run("logout all", func(t *testing.T) {
		u := e.newUser()
		a := e.login(u)
		b := e.login(u)
		e.do(req{method: "POST", path: "/api/logout/all/", auth: "Bearer " + a.Access}).status(http.StatusNoContent)
		for _, tok := range []string{a.Access, b.Access} {
			wantMe(t, "after logout-all", tok, http.StatusUnauthorized)
		}
		e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": b.Refresh}}).errorCode(http.StatusUnauthorized, "invalid_token")
	})
	t.Run("password change", func(t *testing.T) {
		u := e.newUser()
		a := e.login(u)
		b := e.login(u)
		e.do(req{method: "POST", path: "/api/me/password/", auth: "Bearer " + a.Access,
			body: map[string]string{"current_password": "wrong-current-pass", "new_password": "Brand-new-phrase-99"}}).
			errorCode(http.StatusUnauthorized, "authentication_failed")
		e.do(req{method: "POST", path: "/api/me/password/", auth: "Bearer " + a.Access,
			body: map[string]string{"current_password": u.password, "new_password": "short"}}).fieldError("new_password")
		wantMe(t, "rejected changes must revoke nothing", b.Access, http.StatusOK)
		e.do(req{method: "POST", path: "/api/me/password/", auth: "Bearer " + a.Access,
			body: map[string]string{"current_password": u.password, "new_password": "Brand-new-phrase-99"}}).status(http.StatusNoContent)
		wantMe(t, "other session after password change", b.Access, http.StatusUnauthorized)
		wantMe(t, "the changing session", a.Access, http.StatusOK)
		e.do(req{method: "POST", path: "/api/token/", body: map[string]string{"username": u.username, "password": u.password}}).status(http.StatusUnauthorized)
		u.password = "Brand-new-phrase-99"
		e.login(u)
	})
	t.Run("session delete", func(t *testing.T) {
		u := e.newUser()
		phone := e.login(u)
		laptop := e.login(u)
		list := decodeAs[pageJSON[sessionJSON]](e.do(req{method: "GET", path: "/api/sessions/", auth: "Bearer " + laptop.Access}).status(http.StatusOK))
		if len(list.Results) != 3 { // newUser's login, phone, laptop
			t.Fatalf("sessions = %d, want 3", len(list.Results))
		}
		var phoneID string
		current := 0
		for _, s := range list.Results {
			if s.Current {
				current++
			}
		}
		if current != 1 {
			t.Fatalf("%d sessions marked current, want 1", current)
		}
		// The phone's session is the one its own listing marks current.
		for _, s := range decodeAs[pageJSON[sessionJSON]](e.do(req{method: "GET", path: "/api/sessions/", auth: "Bearer " + phone.Access})).Results {
			if s.Current {
				phoneID = s.ID.String()
			}
		}
		other := e.newUser()
		e.do(req{method: "DELETE", path: "/api/sessions/" + phoneID + "/", auth: other.bearer()}).errorCode(http.StatusNotFound, "not_found")
		e.do(req{method: "DELETE", path: "/api/sessions/" + phoneID + "/", auth: "Bearer " + laptop.Access}).status(http.StatusNoContent)
		wantMe(t, "deleted session", phone.Access, http.StatusUnauthorized)
		wantMe(t, "remaining session", laptop.Access, http.StatusOK)
	})
	t.Run("deactivation", func(t *testing.T) {
		admin := e.newAdmin()
		u := e.newUser()
		key := e.newKey(u, "tasks:read")
		e.do(req{method: "PATCH", path: "/api/admin/users/" + u.id + "/", auth: admin.bearer(),
			body: map[string]any{"is_active": false}}).status(http.StatusOK)
		wantMe(t, "deactivated user's access token", u.access, http.StatusUnauthorized)
		e.do(req{method: "GET", path: "/api/tasks/", auth: "Api-Key " + key}).errorCode(http.StatusUnauthorized, "invalid_token")
		e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": u.refresh}}).errorCode(http.StatusUnauthorized, "invalid_token")
		e.do(req{method: "POST", path: "/api/token/", body: map[string]string{"username": u.username, "password": u.password}}).errorCode(http.StatusUnauthorized, "authentication_failed")
	})
}

// TestRevocationReachesAnotherInstance: two servers with their own pools
// and caches on one database, as two processes would be; a logout on one
// is honoured by the other within a second.
func TestRevocationReachesAnotherInstance(t *testing.T) {
	e1 := newEnv(t, nil)
	e2 := e1.secondInstance(t, nil)

	u := e1.newUser()
	e2.do(req{method: "GET", path: "/api/me/", auth: u.bearer()}).status(http.StatusOK)
	e1.do(req{method: "POST", path: "/api/logout/all/", auth: u.bearer()}).status(http.StatusNoContent)
	start := time.Now()
	for e2.do(req{method: "GET", path: "/api/me/", auth: u.bearer()}).Code != http.StatusUnauthorized {
		if time.Since(start) > time.Second {
			t.Fatal("the second instance still accepts the revoked token after 1 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAdminRequiresAdmin(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	e.do(req{method: "GET", path: "/api/admin/users/"}).errorCode(http.StatusUnauthorized, "not_authenticated")
	e.do(req{method: "GET", path: "/api/admin/users/", auth: u.bearer()}).errorCode(http.StatusForbidden, "permission_denied")
	e.do(req{method: "PATCH", path: "/api/admin/users/" + u.id + "/", auth: u.bearer(), body: map[string]any{"is_admin": true}}).errorCode(http.StatusForbidden, "permission_denied")

	admin := e.newAdmin()
	page := decodeAs[pageJSON[adminUserJSON]](e.do(req{method: "GET", path: "/api/admin/users/?limit=1", auth: admin.bearer()}).status(http.StatusOK))
	if len(page.Results) != 1 || page.Next == nil {
		t.Fatalf("limit=1 over 2 users: %d results, next %v", len(page.Results), page.Next)
	}
	e.do(req{method: "PATCH", path: "/api/admin/users/" + admin.id + "/", auth: admin.bearer(), body: map[string]any{"is_active": false}}).errorCode(http.StatusConflict, "conflict")
	// Promotion takes effect at once, without a new login.
	e.do(req{method: "PATCH", path: "/api/admin/users/" + u.id + "/", auth: admin.bearer(), body: map[string]any{"is_admin": true}}).status(http.StatusOK)
	e.do(req{method: "GET", path: "/api/admin/users/", auth: u.bearer()}).status(http.StatusOK)
}

// newAdmin makes an administrator as createuser --admin does, and logs in.
func (e *testEnv) newAdmin() *user {
	e.t.Helper()
	u := &user{username: fmt.Sprintf("admin%d_%d", time.Now().UnixNano()%1e9, userSeq.Add(1)), password: "Sturdy-pass-phrase-42"}
	hash, err := auth.NewHasher(1).Hash(context.Background(), u.password)
	if err != nil {
		e.t.Fatal(err)
	}
	tu := &task.User{Username: u.username, PasswordHash: hash, IsAdmin: true}
	if err := e.db.Users().CreateUser(context.Background(), tu); err != nil {
		e.t.Fatal(err)
	}
	u.id = tu.ID.String()
	e.login(u)
	return u
}

// TestVerifyRefusesAccessTokensLikeAnyRoute: verify checks an access token
// with the check every route uses, so an expired or revoked one gets the
// same answer there as on a protected route.
func TestVerifyRefusesAccessTokensLikeAnyRoute(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	expired, revoked := e.refusedAccess(u)
	e.do(req{method: "POST", path: "/api/token/verify/", body: map[string]string{"token": u.access}}).status(http.StatusOK)
	for name, tok := range map[string]string{"expired": expired, "revoked": revoked.access,
		"bad signature": u.access[:len(u.access)-4] + "AAAA"} {
		onRoute := e.do(req{method: "GET", path: "/api/me/", auth: "Bearer " + tok}).errorCode(http.StatusUnauthorized, "invalid_token")
		onVerify := e.do(req{method: "POST", path: "/api/token/verify/", body: map[string]string{"token": tok}}).errorCode(http.StatusUnauthorized, "invalid_token")
		if onVerify.Error.Message != onRoute.Error.Message {
			t.Errorf("%s access token: verify says %q, a route says %q", name, onVerify.Error.Message, onRoute.Error.Message)
		}
	}
}

// TestVerifyRefreshTokens: verify accepts only a refresh token that is
// still the current one of a live session, however long ago the session
// ended (the revocation memory only spans an access token's lifetime).
func TestVerifyRefreshTokens(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	verify := func(tok string) int {
		return e.do(req{method: "POST", path: "/api/token/verify/", body: map[string]string{"token": tok}}).Code
	}
	if got := verify(u.refresh); got != http.StatusOK {
		t.Fatalf("a current refresh token: verify = %d, want 200", got)
	}
	rotated := decodeAs[tokenRefreshJSON](e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": u.refresh}}).status(http.StatusOK))
	if got := verify(u.refresh); got != http.StatusUnauthorized {
		t.Fatalf("a rotated-out refresh token: verify = %d, want 401", got)
	}
	e.do(req{method: "POST", path: "/api/token/blacklist/", body: map[string]string{"refresh": rotated.Refresh}}).status(http.StatusOK)
	// A second instance whose memory never saw the logout.
	other := e.secondInstance(t, nil)
	if got := other.do(req{method: "POST", path: "/api/token/verify/", body: map[string]string{"token": rotated.Refresh}}).Code; got != http.StatusUnauthorized {
		t.Fatalf("a logged-out refresh token on another instance: verify = %d, want 401", got)
	}
}
