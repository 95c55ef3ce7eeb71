package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

func (e *testEnv) loginAs(username, password, ip string) *resp {
	e.t.Helper()
	return e.do(req{method: "POST", path: "/api/token/", ip: ip, body: map[string]string{"username": username, "password": password}})
}

// failLogins fails n logins as username with a wrong password, the i-th
// (from 1) from the address fmt.Sprintf(addr, i).
func (e *testEnv) failLogins(username string, n int, addr string) {
	e.t.Helper()
	for i := range n {
		e.loginAs(username, "Wrong-password-123", fmt.Sprintf(addr, i+1)).status(http.StatusUnauthorized)
	}
}

// TestFailedLoginsDoNotLockOutOtherAddresses: failures count per username
// and address, so an attacker spending an address's budget on a user keeps
// only that address out.
func TestFailedLoginsDoNotLockOutOtherAddresses(t *testing.T) {
	// The address's budget for all logins is out of the way: what refuses
	// is the count of its failures for this username.
	e := newEnv(t, map[string]string{"RATE_LIMIT_LOGIN": "100/minute"})
	u := e.newUser()
	other := e.newUser()
	freshWindow(t)
	for range 10 {
		e.loginAs(strings.ToUpper(u.username)+" ", "Wrong-password-123", "10.66.0.1").
			errorCode(http.StatusUnauthorized, "authentication_failed")
	}
	r := e.loginAs(u.username, u.password, "10.66.0.1")
	r.errorCode(http.StatusTooManyRequests, "throttled")
	if p := r.Header().Get("RateLimit-Policy"); !strings.HasPrefix(p, `"login_failures";q=10`) {
		t.Errorf("RateLimit-Policy = %q, want the failures of this username from this address", p)
	}
	e.loginAs(other.username, other.password, "10.66.0.1").status(http.StatusOK) // other users of the address are not held up
	if r.Header().Get("Retry-After") == "" {
		t.Error("a 429 must say when to retry")
	}
	e.loginAs(u.username, u.password, "10.66.0.2").status(http.StatusOK)

	// IPv6 clients are one client per /64.
	v := e.newUser()
	e.failLogins(v.username, 10, "[2001:db8:1:2::%x]")
	e.loginAs(v.username, v.password, "[2001:db8:1:2::ff]").errorCode(http.StatusTooManyRequests, "throttled")
	e.loginAs(v.username, v.password, "[2001:db8:1:3::1]").status(http.StatusOK)
}

// TestUsernameCapSlowsOnlyFailingAddresses: past the per-username cap, an
// address that has failed for the user waits; a clean one still gets in.
func TestUsernameCapSlowsOnlyFailingAddresses(t *testing.T) {
	e := newEnv(t, map[string]string{"RATE_LIMIT_LOGIN_USERNAME": "5/hour"})
	u := e.newUser()
	e.failLogins(u.username, 5, "10.67.0.%d")
	r := e.loginAs(u.username, u.password, "10.67.0.1")
	r.errorCode(http.StatusTooManyRequests, "throttled")
	if p := r.Header().Get("RateLimit-Policy"); !strings.HasPrefix(p, `"login_username";q=5`) {
		t.Errorf("RateLimit-Policy = %q, want the username cap", p)
	}
	e.loginAs(u.username, u.password, "10.67.0.99").status(http.StatusOK)
}

// TestOnlyWrongPasswordsCount: an attempt that ends any other way (here
// the client hangs up during the check) is given back, so it cannot turn a
// clean address into one the username cap slows.
func TestOnlyWrongPasswordsCount(t *testing.T) {
	e := newEnv(t, map[string]string{"RATE_LIMIT_LOGIN_USERNAME": "2/hour"})
	u := e.newUser()
	e.failLogins(u.username, 2, "10.74.0.%d")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	hr := httptest.NewRequestWithContext(ctx, "POST", "/api/token/",
		strings.NewReader(fmt.Sprintf(`{"username": %q, "password": %q}`, u.username, u.password)))
	hr.Header.Set("Content-Type", "application/json")
	hr.RemoteAddr = "10.74.0.99:40000"
	e.srv.ServeHTTP(httptest.NewRecorder(), hr)
	e.loginAs(u.username, u.password, "10.74.0.99").status(http.StatusOK)
}

// TestWrongCurrentPasswordCountsAsFailedLogin: a stolen access token cannot
// be used to guess the password through the password change.
func TestWrongCurrentPasswordCountsAsFailedLogin(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	freshWindow(t)
	for range 10 {
		e.do(req{method: "POST", path: "/api/me/password/", auth: u.bearer(), ip: "10.68.0.1",
			body: map[string]string{"current_password": "Wrong-password-123", "new_password": "Another-sturdy-phrase-7"}}).
			errorCode(http.StatusUnauthorized, "authentication_failed")
	}
	e.loginAs(u.username, u.password, "10.68.0.1").errorCode(http.StatusTooManyRequests, "throttled")
	e.loginAs(u.username, u.password, "10.68.0.2").status(http.StatusOK)
}

func TestKeysNeedThePasswordAndExpire(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(), body: map[string]any{"name": "no password"}}).fieldError("current_password")
	e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(), body: map[string]any{"name": "wrong", "current_password": "Wrong-password-123"}}).
		errorCode(http.StatusUnauthorized, "authentication_failed")
	if page := decodeAs[pageJSON[keyJSON]](e.do(req{method: "GET", path: "/api/keys/", auth: u.bearer()}).status(http.StatusOK)); len(page.Results) != 0 {
		t.Fatalf("refused requests created %d keys", len(page.Results))
	}

	k := decodeAs[keyJSON](e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(),
		body: map[string]any{"name": "default", "current_password": u.password}}).status(http.StatusCreated))
	if k.ExpiresAt == nil || k.ExpiresAt.Sub(time.Now().Add(90*24*time.Hour)).Abs() > time.Minute {
		t.Fatalf("expires_at = %v, want 90 days ahead", k.ExpiresAt)
	}
	tooLate := time.Now().Add(367 * 24 * time.Hour).UTC().Format(time.RFC3339)
	e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(),
		body: map[string]any{"name": "too long", "current_password": u.password, "expires_at": tooLate}}).fieldError("expires_at")
}

// TestPasswordChangeRevokesKeys: a key minted before a password change is
// refused after it, unless the user asked to keep their keys.
func TestPasswordChangeRevokesKeys(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	key := e.newKey(u)
	change := func(from, to string, body map[string]any) {
		body["current_password"], body["new_password"] = from, to
		e.do(req{method: "POST", path: "/api/me/password/", auth: u.bearer(), body: body}).status(http.StatusNoContent)
	}
	change(u.password, "Second-sturdy-phrase-8", map[string]any{"revoke_api_keys": false})
	e.do(req{method: "GET", path: "/api/tasks/", auth: "Api-Key " + key}).status(http.StatusOK)
	change("Second-sturdy-phrase-8", "Third-sturdy-phrase-9", map[string]any{})
	e.do(req{method: "GET", path: "/api/tasks/", auth: "Api-Key " + key}).errorCode(http.StatusUnauthorized, "invalid_token")
}

func TestKeyQuota(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	for i := range task.MaxKeysPerUser {
		_, prefix, hash, err := auth.NewAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		exp := time.Now().Add(time.Hour)
		k := &task.APIKey{UserID: mustUUID(t, u.id), Name: fmt.Sprintf("k%d", i), Prefix: prefix, Hash: hash, Scopes: task.AllScopes, ExpiresAt: &exp}
		if err := e.db.Keys().CreateKey(context.Background(), k); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(), body: map[string]any{"name": "one too many", "current_password": u.password}}).
		errorCode(http.StatusConflict, "quota_exceeded")
}

func TestTaskQuota(t *testing.T) {
	e := newEnv(t, map[string]string{"MAX_TASKS_PER_USER": "3"})
	u := e.newUser()
	var last taskJSON
	for i := range 3 {
		last = decodeAs[taskJSON](e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": fmt.Sprintf("Task %d", i)}}).
			status(http.StatusCreated))
	}
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "One too many"}}).
		errorCode(http.StatusConflict, "quota_exceeded")
	e.newUser() // other users have their own room
	e.do(req{method: "DELETE", path: "/api/tasks/" + last.ID.String() + "/", auth: u.bearer()}).status(http.StatusNoContent)
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Room again"}}).status(http.StatusCreated)
}

func TestKeysAndSessionsArePaginated(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	e.login(u)
	e.login(u)
	for range 3 {
		e.newKey(u)
	}
	for _, path := range []string{"/api/keys/", "/api/sessions/"} {
		seen := map[uuid.UUID]bool{}
		next := path + "?limit=2"
		pages := 0
		for next != "" {
			page := decodeAs[pageJSON[struct {
				ID        uuid.UUID  `json:"id"`
				ExpiresAt *time.Time `json:"expires_at"`
			}]](e.do(req{method: "GET", path: strings.TrimPrefix(next, "http://example.com"), auth: u.bearer()}).status(http.StatusOK))
			for _, x := range page.Results {
				if x.ExpiresAt == nil || !x.ExpiresAt.After(time.Now()) {
					t.Errorf("%s: expires_at = %v, want a time ahead", path, x.ExpiresAt)
				}
				seen[x.ID] = true
			}
			pages++
			next = ""
			if page.Next != nil {
				next = *page.Next
			}
		}
		if len(seen) != 3 || pages != 2 {
			t.Errorf("%s: walked %d items in %d pages, want 3 in 2", path, len(seen), pages)
		}
		e.do(req{method: "GET", path: path + "?limit=0", auth: u.bearer()}).fieldError("limit")
	}
}

// refusedAccess returns an access token of u's that has expired, and a
// user whose access token was revoked by logging out everywhere.
func (e *testEnv) refusedAccess(u *user) (expired string, revoked *user) {
	e.t.Helper()
	old := time.Now().Add(-time.Hour)
	expired, _, err := e.srv.tokens.Issue(auth.Access, mustUUID(e.t, u.id), uuid.New(), old, old)
	if err != nil {
		e.t.Fatal(err)
	}
	revoked = e.newUser()
	e.do(req{method: "POST", path: "/api/logout/all/", auth: revoked.bearer()}).status(http.StatusNoContent)
	return expired, revoked
}

// TestUnauthorizedSaysWhatIsWrong: each kind of refused credential gets its
// own message, also in WWW-Authenticate, so a client knows what to do.
func TestUnauthorizedSaysWhatIsWrong(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	key := e.newKey(u)
	expired, revoked := e.refusedAccess(u)

	cases := []struct {
		name, auth, code, mention string
	}{
		{"none", "", "not_authenticated", ""},
		{"unknown scheme", "Basic dXNlcjpwYXNz", "invalid_token", "Unsupported"},
		{"not a JWT", "Bearer not-a-jwt", "invalid_token", "malformed"},
		{"not a key", "Api-Key not-a-key", "invalid_token", "malformed"},
		{"bad signature", "Bearer " + u.access[:len(u.access)-4] + "AAAA", "invalid_token", "not valid"},
		{"expired", "Bearer " + expired, "invalid_token", "expired"},
		{"revoked", revoked.bearer(), "invalid_token", "revoked"},
		{"JWT after Token", "Token " + u.access, "invalid_token", "Bearer"},
		{"key after Bearer", "Bearer " + key, "invalid_token", "Api-Key"},
		{"unknown key", "Api-Key tm_0123456789ab_" + strings.Repeat("x", 43), "invalid_token", "API key"},
	}
	messages := map[string]string{}
	for _, tt := range cases {
		r := e.do(req{method: "GET", path: "/api/tasks/", auth: tt.auth})
		got := r.errorCode(http.StatusUnauthorized, tt.code).Error.Message
		if !strings.Contains(got, tt.mention) {
			t.Errorf("%s: message %q does not mention %q", tt.name, got, tt.mention)
		}
		if prev, dup := messages[got]; dup {
			t.Errorf("%s and %s share the message %q", tt.name, prev, got)
		}
		messages[got] = tt.name
		www := r.Header().Get("WWW-Authenticate")
		if tt.code == "invalid_token" && !strings.Contains(www, `error_description="`+got+`"`) {
			t.Errorf("%s: WWW-Authenticate = %q, want error_description with the message", tt.name, www)
		}
	}
}

func TestTwoAuthorizationHeadersAre400(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.newUser(), e.newUser()
	for _, path := range []string{"/api/me/", "/api/token/verify/"} {
		hr := httptest.NewRequest("GET", path, nil)
		if strings.Contains(path, "verify") {
			hr = httptest.NewRequest("POST", path, strings.NewReader(`{"token": "x"}`))
			hr.Header.Set("Content-Type", "application/json")
		}
		hr.Header.Add("Authorization", a.bearer())
		hr.Header.Add("Authorization", b.bearer())
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, hr)
		checkAgainstSpec(t, hr, w)
		(&resp{w, t}).errorCode(http.StatusBadRequest, "bad_request")
	}
}

// countingKeys counts the lookups that reach the real key store.
type countingKeys struct {
	task.KeyStore
	lookups atomic.Int64
}

func (c *countingKeys) FindKeyByPrefix(ctx context.Context, prefix string) (*task.APIKey, error) {
	c.lookups.Add(1)
	return c.KeyStore.FindKeyByPrefix(ctx, prefix)
}

// TestMadeUpKeysStopReachingTheDatabase: every made-up key is counted
// against its address's anonymous budget before it is looked up, on every
// route and however many race, so once that is spent it costs no query; a
// key that worked lately from there still gets in.
func TestMadeUpKeysStopReachingTheDatabase(t *testing.T) {
	keys := &countingKeys{}
	e := newEnv(t, nil, func(d *Deps) { keys.KeyStore = d.Keys; d.Keys = keys })
	u := e.newUser()
	good := e.newKey(u)
	freshWindow(t)
	madeUp := func(i int) string { return fmt.Sprintf("Api-Key tm_%012x_%s", i, strings.Repeat("z", 43)) }

	t.Run("one at a time", func(t *testing.T) {
		const ip = "10.69.0.1"
		e.do(req{method: "GET", path: "/api/tasks/", ip: ip, auth: "Api-Key " + good}).status(http.StatusOK)
		keys.lookups.Store(0)
		var refused int
		for i := range 150 {
			r := e.do(req{method: "GET", path: "/api/tasks/", ip: ip, auth: madeUp(i)})
			if r.Code == http.StatusTooManyRequests {
				refused++
			} else {
				r.errorCode(http.StatusUnauthorized, "invalid_token")
			}
		}
		if n := keys.lookups.Load(); n > 50 {
			t.Errorf("150 made-up keys from one address made %d lookups, want at most the anonymous budget of 50", n)
		}
		if refused != 100 {
			t.Errorf("%d of 150 made-up keys were throttled, want 100 (a valid key costs the anonymous budget nothing)", refused)
		}
		e.do(req{method: "GET", path: "/api/tasks/", ip: ip, auth: "Api-Key " + good}).status(http.StatusOK)
		// The public prefix of a working key with a made-up secret is no way around it.
		forged := "Api-Key " + good[:len(good)-43] + strings.Repeat("y", 43)
		keys.lookups.Store(0)
		e.do(req{method: "GET", path: "/api/tasks/", ip: ip, auth: forged}).errorCode(http.StatusTooManyRequests, "throttled")
		if n := keys.lookups.Load(); n != 0 {
			t.Errorf("a known prefix with a wrong secret made %d lookups after the budget was spent, want 0", n)
		}
	})
	t.Run("on a route with its own budget", func(t *testing.T) {
		keys.lookups.Store(0)
		for i := range 80 {
			e.do(req{method: "POST", path: "/api/token/verify/", ip: "10.69.0.2", auth: madeUp(1000 + i), body: map[string]string{"token": "x"}})
		}
		if n := keys.lookups.Load(); n > 50 {
			t.Errorf("80 made-up keys to /api/token/verify/ made %d lookups, want at most 50", n)
		}
	})
	t.Run("racing", func(t *testing.T) {
		keys.lookups.Store(0)
		var wg sync.WaitGroup
		for i := range 120 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.do(req{method: "GET", path: "/api/tasks/", ip: "10.69.0.3", auth: madeUp(2000 + i)})
			}()
		}
		wg.Wait()
		if n := keys.lookups.Load(); n > 50 {
			t.Errorf("120 racing made-up keys made %d lookups, want at most 50", n)
		}
	})
}

func TestUnknownPathsAndMethodsAreThrottled(t *testing.T) {
	e := newEnv(t, nil)
	freshWindow(t)
	for _, probe := range []req{{method: "GET", path: "/api/nope/", ip: "10.70.0.1"}, {method: "PUT", path: "/api/token/", ip: "10.70.0.2"}} {
		var first, throttledAt int
		for i := range 60 {
			r := e.do(probe)
			if i == 0 {
				first = r.Code
				if r.Header().Get("X-RateLimit-Limit") != "50" {
					t.Errorf("%s %s: X-RateLimit-Limit = %q, want 50", probe.method, probe.path, r.Header().Get("X-RateLimit-Limit"))
				}
			}
			if r.Code == http.StatusTooManyRequests {
				throttledAt = i + 1
				break
			}
		}
		if first != http.StatusNotFound && first != http.StatusMethodNotAllowed || throttledAt != 51 {
			t.Errorf("%s %s: first answer %d, 429 at request %d; want 404/405 then 429 at 51", probe.method, probe.path, first, throttledAt)
		}
	}
}

// TestThrottledIsOneEventPerWindow: a client hammering past its budget is
// one security event, not one per 429.
func TestThrottledIsOneEventPerWindow(t *testing.T) {
	e := newEnv(t, map[string]string{"RATE_LIMIT_ANON": "3/minute"})
	freshWindow(t)
	for range 13 {
		e.do(req{method: "GET", path: "/api/tasks/", ip: "10.71.0.1"})
	}
	if n := strings.Count(e.logBuf.String(), `"event":"throttled"`); n != 1 {
		t.Fatalf("ten 429s logged %d throttled events, want 1", n)
	}
}

func TestAllowedHostsDefaultToLoopbackNames(t *testing.T) {
	e := newEnv(t, map[string]string{"ALLOWED_HOSTS": ""})
	for host, want := range map[string]int{"localhost:8000": 200, "127.0.0.1": 200, "[::1]:8000": 200, "evil.example": 400, "10.1.2.3": 400} {
		if r := e.do(req{method: "GET", path: "/healthz", headers: map[string]string{"Host": host}}); r.Code != want {
			t.Errorf("Host %q: status = %d, want %d", host, r.Code, want)
		}
	}
	// An absolute-form target names its host; another one is refused too.
	hr := httptest.NewRequest("GET", "http://evil.example/healthz", nil)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, hr)
	if w.Code != http.StatusBadRequest {
		t.Errorf("GET http://evil.example/healthz: status = %d, want 400", w.Code)
	}
}

func TestPublicURLIsTheBaseOfAbsoluteURLs(t *testing.T) {
	redirecting := newEnv(t, map[string]string{"PUBLIC_URL": "https://api.example.com", "SECURE_SSL_REDIRECT": "true"})
	r := redirecting.do(req{method: "GET", path: "/api/tasks/?limit=5", headers: map[string]string{"Host": "www.example.com"}})
	if r.Code != http.StatusPermanentRedirect || r.Header().Get("Location") != "https://api.example.com/api/tasks/?limit=5" {
		t.Fatalf("redirect: %d to %q, want 308 to PUBLIC_URL", r.Code, r.Header().Get("Location"))
	}

	e := newEnv(t, map[string]string{"PUBLIC_URL": "https://api.example.com"})
	u := e.newUser()
	for i := range 3 {
		e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": fmt.Sprintf("Link %d", i)}}).
			status(http.StatusCreated)
	}
	page := decodeAs[pageJSON[taskJSON]](e.do(req{method: "GET", path: "/api/tasks/?limit=2", auth: u.bearer(),
		headers: map[string]string{"Host": "www.example.com"}}).status(http.StatusOK))
	if page.Next == nil || !strings.HasPrefix(*page.Next, "https://api.example.com/api/tasks/?") {
		t.Fatalf("next = %v, want a link on PUBLIC_URL", page.Next)
	}
}

// TestSessionMaxAge: refreshing keeps a session alive only up to its
// maximum age from the sign-in.
func TestSessionMaxAge(t *testing.T) {
	e := newEnv(t, map[string]string{"ACCESS_TOKEN_TTL": "1m", "REFRESH_TOKEN_TTL": "10m", "SESSION_MAX_AGE": "2m"})
	u := e.newUser()
	signedIn := time.Now().Add(-2*time.Minute + 20*time.Second)
	e.srv.now = func() time.Time { return signedIn }
	e.login(u)
	e.srv.now = time.Now
	tok := decodeAs[tokenRefreshJSON](e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": u.refresh}}).status(http.StatusOK))
	got, err := e.srv.tokens.Verify(auth.Refresh, tok.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if end := signedIn.Add(2 * time.Minute); got.ExpiresAt.After(end) {
		t.Fatalf("refreshed token expires %v, after the session's end %v", got.ExpiresAt, end)
	}
	e.srv.now = func() time.Time { return signedIn.Add(2*time.Minute + time.Second) }
	e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": tok.Refresh}}).
		errorCode(http.StatusUnauthorized, "invalid_token")
}

// TestRefusedKeyRequestsChangeNothing: a key's last use moves only with a
// request it was allowed to make.
func TestRefusedKeyRequestsChangeNothing(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	key := "Api-Key " + e.newKey(u, "tasks:read")
	lastUsed := func() *time.Time {
		t.Helper()
		page := decodeAs[pageJSON[keyJSON]](e.do(req{method: "GET", path: "/api/keys/", auth: u.bearer()}).status(http.StatusOK))
		if len(page.Results) != 1 {
			t.Fatalf("%d keys listed, want 1", len(page.Results))
		}
		return page.Results[0].LastUsedAt
	}
	e.do(req{method: "POST", path: "/api/tasks/", auth: key, body: map[string]any{"title": "Not with this key"}}).
		errorCode(http.StatusForbidden, "permission_denied")
	e.do(req{method: "GET", path: "/api/me/", auth: key}).errorCode(http.StatusForbidden, "permission_denied")
	if got := lastUsed(); got != nil {
		t.Fatalf("refused requests set last_used_at to %v", got)
	}
	e.do(req{method: "GET", path: "/api/tasks/", auth: key}).status(http.StatusOK)
	if got := lastUsed(); got == nil {
		t.Fatal("an allowed request left last_used_at unset")
	}
}
