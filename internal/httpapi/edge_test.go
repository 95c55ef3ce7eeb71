package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acme/taskmanager/internal/postgres"
)

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	for _, r := range []req{
		{method: "GET", path: "/api/me/", auth: u.bearer()},
		{method: "GET", path: "/api/tasks/"},
		{method: "GET", path: "/nowhere"},
		{method: "GET", path: "/healthz"},
	} {
		got := e.do(r)
		for name, want := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
			"Content-Type":            "application/json",
		} {
			if h := got.Header().Get(name); h != want {
				t.Errorf("%s %s: %s = %q, want %q", r.method, r.path, name, h, want)
			}
		}
		if strings.HasPrefix(r.path, "/api/") && got.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store", r.path, got.Header().Get("Cache-Control"))
		}
	}
}

func TestHostsAndHSTS(t *testing.T) {
	e := newEnv(t, map[string]string{"ALLOWED_HOSTS": "api.example.com,.example.org", "SECURE_HSTS_SECONDS": "3600",
		"TRUSTED_PROXIES": "10.98.0.1"})
	for host, want := range map[string]int{
		"api.example.com": 200, "API.EXAMPLE.COM:443": 200, "example.org": 200, "a.example.org": 200,
		"evil.example": 400, "api.example.com.evil": 400, "xexample.org": 400,
	} {
		r := e.do(req{method: "GET", path: "/healthz", headers: map[string]string{"Host": host}})
		if r.Code != want {
			t.Errorf("Host %q: status = %d, want %d", host, r.Code, want)
		}
		if want == 400 {
			r.errorCode(http.StatusBadRequest, "bad_request")
		}
	}
	plain := e.do(req{method: "GET", path: "/healthz", headers: map[string]string{"Host": "api.example.com"}})
	if plain.Header().Get("Strict-Transport-Security") != "" {
		t.Error("HSTS must not be sent over plain HTTP")
	}
	proxied := e.do(req{method: "GET", path: "/healthz", ip: "10.98.0.1",
		headers: map[string]string{"Host": "api.example.com", "X-Forwarded-Proto": "https"}})
	if got := proxied.Header().Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=3600") {
		t.Errorf("HSTS behind a trusted TLS proxy = %q, want max-age=3600", got)
	}
	spoofed := e.do(req{method: "GET", path: "/healthz", headers: map[string]string{"Host": "api.example.com", "X-Forwarded-Proto": "https"}})
	if spoofed.Header().Get("Strict-Transport-Security") != "" {
		t.Error("X-Forwarded-Proto from an untrusted peer must be ignored")
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(req{method: "GET", path: "/api/tasks/", headers: map[string]string{"Origin": "http://localhost:3000"}})
	r.errorCode(http.StatusUnauthorized, "not_authenticated")
	if r.Header().Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Fatalf("an allowed origin's 401 must carry its CORS headers, got %v", r.Header())
	}
	exposed := strings.ToLower(r.Header().Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"etag", "location", "retry-after", "x-ratelimit-limit", "x-request-id", "idempotent-replayed"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
		}
	}
	for _, origin := range []string{"http://evil.example", "http://localhost:3000.evil.example", "https://localhost:3000", "null"} {
		r := e.do(req{method: "OPTIONS", path: "/api/tasks/", headers: map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST"}})
		for k := range r.Header() {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("origin %q got %s", origin, k)
			}
		}
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(req{method: "GET", path: "/api/tasks/", headers: map[string]string{"X-Request-ID": "abc-123"}})
	if r.errorCode(http.StatusUnauthorized, "not_authenticated").Error.RequestID != "abc-123" {
		t.Fatal("a sane X-Request-ID must be echoed")
	}
	r = e.do(req{method: "GET", path: "/healthz", headers: map[string]string{"X-Request-ID": `<script>"x"</script>`}})
	if id := r.Header().Get("X-Request-ID"); id == "" || strings.Contains(id, "<") {
		t.Fatalf("an insane X-Request-ID must be replaced, got %q", id)
	}
}

// TestLogsHoldNoSecrets: the access and security lines carry who and what,
// never a password, token or key.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	key := e.newKey(u, "tasks:read")
	e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": u.refresh}})
	e.do(req{method: "GET", path: "/api/tasks/", auth: "Token " + key})
	e.do(req{method: "POST", path: "/api/token/", body: map[string]string{"username": u.username, "password": "Wrong-" + u.password}})
	logs := e.logBuf.String()
	for what, secret := range map[string]string{"password": u.password, "access": u.access, "refresh": u.refresh, "key": key} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the %s", what)
		}
	}
	var sawAccess, sawFailed bool
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "request" && rec["path"] == "/api/tasks/" && rec["auth"] == "api_key" && rec["user_id"] == u.id {
			sawAccess = true
		}
		if rec["event"] == "login_failed" {
			sawFailed = true
		}
	}
	if !sawAccess || !sawFailed {
		t.Fatalf("want an access line for the key request (%v) and a login_failed event (%v)", sawAccess, sawFailed)
	}
}

func TestDatabaseDownIs503(t *testing.T) {
	db, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := loadConfig(t, nil)
	srv := NewServer(ConfigFrom(cfg), discardLogger(), testDeps(cfg, db))
	e := &testEnv{t: t, srv: srv, cfg: srv.cfg}
	e.do(req{method: "GET", path: "/healthz"}).status(http.StatusOK)
	for _, r := range []req{
		{method: "GET", path: "/readyz"},
		{method: "POST", path: "/api/token/", body: map[string]string{"username": "someone", "password": "Sturdy-pass-phrase-42"}},
	} {
		got := e.do(r)
		if msg := got.errorCode(http.StatusServiceUnavailable, "service_unavailable").Error.Message; msg != "Service temporarily unavailable." {
			t.Fatalf("%s %s: 503 message = %q", r.method, r.path, msg)
		}
		if got.Header().Get("Retry-After") == "" {
			t.Fatalf("%s %s: a 503 must say when to retry", r.method, r.path)
		}
	}
}

func TestPanicIsGeneric500(t *testing.T) {
	e := newEnv(t, nil)
	h := e.srv.requestID(e.srv.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom: /secret/path.go:42")
	})))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	r := &resp{w, t}
	got := r.errorCode(http.StatusInternalServerError, "internal_error")
	if got.Error.Message != "Internal server error." || strings.Contains(w.Body.String(), "boom") {
		t.Fatalf("500 body leaks: %s", w.Body.String())
	}
	if !strings.Contains(e.logBuf.String(), "boom") {
		t.Fatal("the panic must be in the log")
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer a.b.c", "bearer x", "Token tm_abc", "Api-Key k", "Basic dXNlcg==", "Bearer", "Bearer  ",
		"Token a b", " Bearer x ", "Api-Key\tx", "Bearer \x00", strings.Repeat("Bearer ", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		c, err := parseAuthorization(header)
		if err != nil {
			return
		}
		if c.value == "" || strings.ContainsAny(c.value, " \t") {
			t.Fatalf("parsed %q into an unusable credential %q", header, c.value)
		}
		scheme, _, _ := strings.Cut(strings.TrimSpace(header), " ")
		if c.bearer != strings.EqualFold(scheme, "bearer") {
			t.Fatalf("%q: bearer = %v", header, c.bearer)
		}
	})
}

// TestNULAndBrokenUTF8AreClientErrors: input PostgreSQL cannot store is a
// 400 with a field error where there is a field, never a 500.
func TestNULAndBrokenUTF8AreClientErrors(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	for _, q := range []string{"%00", "%ff", "a%c3"} {
		e.do(req{method: "GET", path: "/api/tasks/?search=" + q, auth: u.bearer()}).fieldError("search")
	}
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: `{"title": "Nul inside", "description": "a\u0000b"}`}).fieldError("description")
	r := e.do(req{method: "POST", path: "/api/token/", body: `{"username": "a\u0000", "password": "Sturdy-pass-phrase-42"}`})
	if r.Code >= 500 {
		t.Fatalf("NUL in a login username: status = %d", r.Code)
	}
}

// TestStrictJSONKeys: keys are matched exactly and once; null is no object.
func TestStrictJSONKeys(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: `{"TITLE": "Upper key"}`}).fieldError("TITLE")
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: `{"title": "bad!", "title": "Good one"}`}).fieldError("title")
	tk := decodeAs[taskJSON](e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Stays put"}}).status(http.StatusCreated))
	path := "/api/tasks/" + tk.ID.String() + "/"
	etag := e.do(req{method: "GET", path: path, auth: u.bearer()}).Header().Get("ETag")
	e.do(req{method: "PATCH", path: path, auth: u.bearer(), body: "null"}).errorCode(http.StatusBadRequest, "bad_request")
	if got := e.do(req{method: "GET", path: path, auth: u.bearer()}).Header().Get("ETag"); got != etag {
		t.Fatalf("a null PATCH changed the task: ETag %s -> %s", etag, got)
	}
	// If-None-Match compares weakly.
	r := e.do(req{method: "GET", path: path, auth: u.bearer(), headers: map[string]string{"If-None-Match": "W/" + etag}})
	if r.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match W/%s: status = %d, want 304", etag, r.Code)
	}
}

// TestClientGoneIsNotAServerError: a request abandoned by its client is
// logged as 499, not as a failure of ours.
func TestClientGoneIsNotAServerError(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("GET", "/api/tasks/", nil).WithContext(ctx)
	r.Header.Set("Authorization", u.bearer())
	r.RemoteAddr = "192.0.2.99:1"
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	if w.Code != statusClientClosed {
		t.Fatalf("status = %d, want %d", w.Code, statusClientClosed)
	}
	if strings.Contains(e.logBuf.String(), "request failed") {
		t.Fatal("an abandoned request was logged as a server failure")
	}
}

// TestNoOriginsMeansNoCORS: without CORS_ALLOWED_ORIGINS no origin is
// allowed (go-chi/cors alone would allow them all).
func TestNoOriginsMeansNoCORS(t *testing.T) {
	e := newEnv(t, map[string]string{"CORS_ALLOWED_ORIGINS": ""})
	r := e.do(req{method: "OPTIONS", path: "/api/tasks/", headers: map[string]string{
		"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"}})
	for k := range r.Header() {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			t.Errorf("no origins configured, yet the preflight got %s: %s", k, r.Header().Get(k))
		}
	}
}

func TestHostWithBadPortIs400(t *testing.T) {
	e := newEnv(t, map[string]string{"ALLOWED_HOSTS": "api.example.com"})
	e.do(req{method: "GET", path: "/healthz", headers: map[string]string{"Host": "api.example.com:evil"}}).errorCode(http.StatusBadRequest, "bad_request")
	e.do(req{method: "GET", path: "/healthz", headers: map[string]string{"Host": "api.example.com:8443"}}).status(http.StatusOK)
}

func TestBrokenUTF8BodyIs400(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: []byte("{\"title\": \"Bad \xff byte\"}")}).errorCode(http.StatusBadRequest, "malformed_json")
}
