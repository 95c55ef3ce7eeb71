package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/logtest"
	"github.com/acme/taskmanager/internal/redistest"
)

// freshWindow waits out the current minute when it is nearly over, so a
// burst is counted within one wall-clock window.
func freshWindow(t testing.TB) {
	t.Helper()
	if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 5*time.Second {
		time.Sleep(left + 50*time.Millisecond)
	}
}

// TestThrottleExactUnderConcurrency: 200 requests of one user race; exactly
// the limit pass.
func TestThrottleExactUnderConcurrency(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	freshWindow(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()}).Code
			mu.Lock()
			counts[c]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[http.StatusOK] != 100 || counts[http.StatusTooManyRequests] != 100 {
		t.Fatalf("statuses = %v, want exactly 100 x 200 and 100 x 429", counts)
	}
}

func TestThrottleAnonymousThenHeaders(t *testing.T) {
	e := newEnv(t, nil)
	freshWindow(t)
	const ip = "192.0.2.10"
	e.do(req{method: "GET", path: "/api/tasks/", ip: ip}).errorCode(http.StatusUnauthorized, "not_authenticated")
	r := e.do(req{method: "GET", path: "/api/tasks/", ip: ip})
	if got := r.Header().Get("X-RateLimit-Limit"); got != "50" {
		t.Fatalf("X-RateLimit-Limit = %q, want 50", got)
	}
	if got := r.Header().Get("RateLimit-Policy"); got != `"anon";q=50;w=60` {
		t.Fatalf("RateLimit-Policy = %q", got)
	}
	n := 3
	for ; n <= 60; n++ {
		r = e.do(req{method: "GET", path: "/api/tasks/", ip: ip})
		if r.Code == http.StatusTooManyRequests {
			break
		}
		r.errorCode(http.StatusUnauthorized, "not_authenticated")
	}
	if n != 51 {
		t.Fatalf("the 429 came on request %d, want 51", n)
	}
	r.errorCode(http.StatusTooManyRequests, "throttled")
	ra, err := strconv.Atoi(r.Header().Get("Retry-After"))
	left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)).Seconds()
	if err != nil || ra < 1 || float64(ra) > left+3 {
		t.Fatalf("Retry-After = %q, want the seconds to the window's end (%.0f)", r.Header().Get("Retry-After"), left)
	}
	// Another client is not affected.
	e.do(req{method: "GET", path: "/api/tasks/", ip: "192.0.2.11"}).errorCode(http.StatusUnauthorized, "not_authenticated")
}

func TestThrottleClientIP(t *testing.T) {
	e := newEnv(t, map[string]string{"RATE_LIMIT_ANON": "2/minute", "TRUSTED_PROXIES": "10.99.0.0/16"})
	freshWindow(t)
	spoof := func(ip, xff string) int {
		return e.do(req{method: "GET", path: "/api/tasks/", ip: ip, headers: map[string]string{"X-Forwarded-For": xff}}).Code
	}
	// From an untrusted peer, X-Forwarded-For changes nothing.
	for i, want := range []int{401, 401, 429} {
		if got := spoof("192.0.2.20", "203.0.113."+strconv.Itoa(i+1)); got != want {
			t.Fatalf("untrusted request %d: status = %d, want %d", i+1, got, want)
		}
	}
	// Behind a trusted proxy, the right-most untrusted entry is the client.
	for i := range 3 {
		if got := spoof("10.99.0.1", "198.51.100.7, 203.0.113."+strconv.Itoa(50+i)); got != http.StatusUnauthorized {
			t.Fatalf("proxied client %d: status = %d, want 401 (own budget)", i, got)
		}
	}
	// A client cannot hide behind a spoofed left-most entry.
	for i, want := range []int{401, 401, 429} {
		if got := spoof("10.99.0.1", "1.2.3."+strconv.Itoa(i)+", 203.0.113.99"); got != want {
			t.Fatalf("spoofed left entry %d: status = %d, want %d", i+1, got, want)
		}
	}
}

func TestPreflightIsNeverThrottled(t *testing.T) {
	e := newEnv(t, map[string]string{"RATE_LIMIT_ANON": "2/minute"})
	freshWindow(t)
	const ip = "192.0.2.30"
	for i := range 10 {
		r := e.do(req{method: "OPTIONS", path: "/api/tasks/", ip: ip, headers: map[string]string{
			"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization, content-type, if-match, idempotency-key, x-request-id"}})
		if r.Code != http.StatusOK && r.Code != http.StatusNoContent || r.Header().Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
			t.Fatalf("preflight %d: status %d, allow-origin %q", i, r.Code, r.Header().Get("Access-Control-Allow-Origin"))
		}
	}
	e.do(req{method: "GET", path: "/api/tasks/", ip: ip}).errorCode(http.StatusUnauthorized, "not_authenticated")
}

// TestSharedLimitsThroughRedis: two instances on one database and one
// Redis enforce one combined budget for a user.
func TestSharedLimitsThroughRedis(t *testing.T) {
	url := redistest.URL(t)
	prefix := "shared-" + uuid.NewString() + ":"
	var logs logtest.Buffer
	env := map[string]string{"RATE_LIMIT_USER": "10/minute"}
	e1 := newEnv(t, env, withRedis(t, url, prefix, &logs))
	e2 := e1.secondInstance(t, env, withRedis(t, url, prefix, &logs))
	u := e1.newUser()
	freshWindow(t)
	allowed := 0
	for i := range 20 {
		e := []*testEnv{e1, e2}[i%2]
		if e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()}).Code == http.StatusOK {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("two instances allowed %d requests together, want the shared limit of 10", allowed)
	}
}

// TestRedisDownKeepsServing: the server answers through a Redis outage,
// counting locally, and logs that it does.
func TestRedisDownKeepsServing(t *testing.T) {
	rs := redistest.Start(t)
	var logs logtest.Buffer
	e := newEnv(t, nil, withRedis(t, rs.URL, "down:", &logs))
	u := e.newUser()
	e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()}).status(http.StatusOK)
	rs.Stop()
	for range 3 {
		r := e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()}).status(http.StatusOK)
		if r.Header().Get("X-RateLimit-Limit") != "100" {
			t.Fatalf("local counting must still send the limit headers: %v", r.Header())
		}
	}
	if !strings.Contains(logs.String(), "counting locally") {
		t.Fatalf("the fallback must be logged, got:\n%s", logs.String())
	}
}

// TestSustainedLimit: a second, longer window caps what the burst limit
// would allow, and both are announced.
func TestSustainedLimit(t *testing.T) {
	e := newEnv(t, map[string]string{"RATE_LIMIT_USER": "5/minute", "RATE_LIMIT_USER_SUSTAINED": "3/hour"})
	u := e.newUser()
	freshWindow(t)
	first := e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()}).status(http.StatusOK)
	if got, want := first.Header().Get("RateLimit-Policy"), `"user";q=5;w=60, "user_sustained";q=3;w=3600`; got != want {
		t.Fatalf("RateLimit-Policy = %q, want %q", got, want)
	}
	if got := first.Header().Get("X-RateLimit-Remaining"); got != "2" {
		t.Fatalf("X-RateLimit-Remaining = %q, want the tighter limit's 2", got)
	}
	for range 2 {
		e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()}).status(http.StatusOK)
	}
	r := e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()})
	r.errorCode(http.StatusTooManyRequests, "throttled")
	if ra, _ := strconv.Atoi(r.Header().Get("Retry-After")); ra <= 60 {
		t.Fatalf("Retry-After = %d, want the hour window's wait", ra)
	}
}

// TestLoginBudgetHoldsUnderARace: concurrent wrong guesses for one
// username from one address cannot get past its budget.
func TestLoginBudgetHoldsUnderARace(t *testing.T) {
	e := newEnv(t, map[string]string{"RATE_LIMIT_LOGIN": "5/minute"})
	u := e.newUser()
	freshWindow(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.do(req{method: "POST", path: "/api/token/", ip: "10.73.0.1", body: map[string]string{"username": u.username, "password": "Wrong-guess-123456"}}).Code
			mu.Lock()
			counts[c]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[http.StatusUnauthorized] != 5 || counts[http.StatusTooManyRequests] != 35 {
		t.Fatalf("statuses = %v, want exactly 5 checked guesses (401) and 35 x 429", counts)
	}
}

// TestRatesMatchTheContract pins which budget each API route spends: the
// credential endpoints their own, every other route the general one.
func TestRatesMatchTheContract(t *testing.T) {
	e := newEnv(t, nil)
	own := map[string]rate{
		"POST /api/register":             registerRate,
		"POST /api/token":                loginRate,
		"POST /api/token/mfa":            loginRate,
		"POST /api/token/passkey/begin":  loginRate,
		"POST /api/token/passkey/finish": loginRate,
		"POST /api/token/refresh":        tokenRate,
		"POST /api/token/verify":         tokenRate,
		"POST /api/token/blacklist":      tokenRate,
		"POST /api/keys":                 keyCreateRate,
		"POST /oauth/login":              loginRate,
		"POST /oauth/consent":            loginRate,
		"POST /oauth/token":              tokenRate,
		"POST /oauth/introspect":         tokenRate,
		"POST /oauth/revoke":             tokenRate,
	}
	if len(e.srv.rates) < 20 {
		t.Fatalf("%d routes declare a rate, want every API route of the contract (at least 20)", len(e.srv.rates))
	}
	for route, got := range e.srv.rates {
		want, ok := own[route]
		if !ok {
			want = generalRate
		}
		if got != want {
			t.Errorf("rate of %s = %d, want %d", route, got, want)
		}
	}
	for route := range own {
		if _, ok := e.srv.rates[route]; !ok {
			t.Errorf("route %s is not registered", route)
		}
	}
}

// TestUndeclaredRateCannotBeRegistered: the zero rate is no budget, and
// registering a route with it stops the server from being built.
func TestUndeclaredRateCannotBeRegistered(t *testing.T) {
	s := &Server{throttle: &throttle{}}
	defer func() {
		if recover() == nil {
			t.Fatal("a route with the zero rate was registered")
		}
	}()
	s.limit(rate(0))
}

// TestScopedBudgetsByCaller: the credential endpoints count every caller
// per client IP, a signed-in caller's token included; minting keys counts
// per user.
func TestScopedBudgetsByCaller(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	freshWindow(t)
	for _, tt := range []struct {
		r      req
		policy string
	}{
		{req{method: "POST", path: "/api/token/", body: map[string]string{"username": u.username, "password": "nope"}, auth: u.bearer()}, `"login";q=10;w=60`},
		{req{method: "POST", path: "/api/token/verify/", body: map[string]string{"token": u.access}, auth: u.bearer()}, `"token";q=30;w=60`},
		{req{method: "POST", path: "/api/keys/", body: map[string]any{}, auth: u.bearer()}, `"key_create";q=20;w=60`},
		{req{method: "POST", path: "/api/keys/", body: map[string]any{}}, `"anon";q=50;w=60`},
		{req{method: "GET", path: "/api/keys/", auth: u.bearer()}, `"user";q=100;w=60`},
		{req{method: "PUT", path: "/api/token/"}, `"anon";q=50;w=60`},
		{req{method: "GET", path: "/api/nowhere/", auth: u.bearer()}, `"user";q=100;w=60`},
	} {
		if got := e.do(tt.r).Header().Get("RateLimit-Policy"); got != tt.policy {
			t.Errorf("%s %s: RateLimit-Policy = %q, want %q", tt.r.method, tt.r.path, got, tt.policy)
		}
	}
}

// The header names set on every response are in canonical form, or each
// Set would canonicalise them again.
func TestHotHeaderNamesAreCanonical(t *testing.T) {
	for _, k := range []string{headerLimit, headerRemaining, headerReset, headerPolicy, headerState, headerRequestID} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("header %q is sent as %q; spell it that way", k, c)
		}
	}
}
