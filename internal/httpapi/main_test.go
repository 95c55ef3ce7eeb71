package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/audit"
	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/config"
	"github.com/acme/taskmanager/internal/logtest"
	"github.com/acme/taskmanager/internal/metrics"
	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/ratelimit"
	"github.com/acme/taskmanager/internal/redistest"
)

func TestMain(m *testing.M) { pgtest.Main(m, redistest.Stop) }

// withRedis shares the server's rate limits through Redis at url, under a
// prefix of the test's own, falling back to memory, as serve does.
func withRedis(t testing.TB, url, prefix string, logBuf *logtest.Buffer) func(*Deps) {
	stores, _, closeFn, err := ratelimit.Connect(context.Background(), url, prefix, slog.New(slog.NewJSONHandler(logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return func(d *Deps) { d.RateStore = stores }
}

// testEnv is a server on its own migrated database.
type testEnv struct {
	t      testing.TB
	srv    *Server
	db     *postgres.DB
	dsn    string
	cfg    Config
	logBuf *logtest.Buffer
	ip     atomic.Uint32
}

// loadConfig is the contract's defaults, as serve reads them from an empty
// environment plus a signing key and a database; env overrides them.
func loadConfig(t testing.TB, env map[string]string) *config.Config {
	t.Helper()
	base := map[string]string{
		"DATABASE_URL":         "postgres://unused",
		"JWT_SIGNING_KEY":      strings.Repeat("k", 64),
		"CORS_ALLOWED_ORIGINS": "http://localhost:3000",
		"ALLOWED_HOSTS":        ".example.com", // httptest's requests name example.com
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.Load(func(k string) string { return base[k] }, "serve")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// testConfig is the HTTP layer's part of loadConfig.
func testConfig(t testing.TB, env map[string]string) Config {
	t.Helper()
	return ConfigFrom(loadConfig(t, env))
}

// testDeps are the collaborators serve would build from cfg, on db, with
// limits counted in memory.
func testDeps(cfg *config.Config, db *postgres.DB) Deps {
	if cfg.OAuthRSAKey == nil {
		cfg.OAuthRSAKey = testRSAKey()
	}
	if cfg.MFAEncryptionKey == nil {
		cfg.MFAEncryptionKey = bytes.Repeat([]byte{7}, 32)
	}
	return Deps{
		Tokens: auth.NewTokens(TokenConfig(cfg)), Hasher: auth.NewHasher(cfg.PasswordHashLimit),
		Tasks: db.Tasks(), Users: db.Users(), Sessions: db.Sessions(), Keys: db.Keys(),
		Revocations: db.Revocations(), OAuth: db.OAuth(), MFA: db.MFA(), Secrets: SecretBox(cfg),
		Passkeys: RelyingParty(cfg),
		Ping:     db.Ping, RateStore: ratelimit.LocalStores, Now: time.Now,
	}
}

// newEnv starts a server on a fresh database; env overrides configuration.
func newEnv(t testing.TB, env map[string]string, opts ...func(*Deps)) *testEnv {
	t.Helper()
	cfg := loadConfig(t, env)
	db, dsn := pgtest.OpenWith(t, postgres.OptionsFrom(cfg, nil))
	return newEnvOn(t, db, dsn, env, opts...)
}

// newEnvOn starts a server on an existing database, as a second instance would.
// secondInstance is another server on e's database, with a pool, caches
// and a revocation listener of its own, as a second process would have.
func (e *testEnv) secondInstance(t testing.TB, env map[string]string, opts ...func(*Deps)) *testEnv {
	t.Helper()
	db, err := postgres.Open(context.Background(), e.dsn, postgres.Options{TokenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return newEnvOn(t, db, e.dsn, env, opts...)
}

func newEnvOn(t testing.TB, db *postgres.DB, dsn string, env map[string]string, opts ...func(*Deps)) *testEnv {
	t.Helper()
	cfg := loadConfig(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go db.Revocations().Run(ctx)
	buf := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps := testDeps(cfg, db)
	// As serve does: metrics on, and an audit trail storing the events.
	deps.Metrics = metrics.New("test")
	deps.Audit = audit.New(db.Audit(), audit.Options{Dropped: deps.Metrics.AuditDropped, Written: deps.Metrics.AuditWritten,
		Failed: deps.Metrics.AuditFailed, FlushEvery: 20 * time.Millisecond})
	for _, opt := range opts {
		opt(&deps)
	}
	if deps.Audit != nil {
		trail := deps.Audit
		go trail.Run(context.WithoutCancel(ctx))
		t.Cleanup(func() { _ = trail.Close(context.Background()) })
	}
	srv := NewServer(ConfigFrom(cfg), log, deps)
	e := &testEnv{t: t, srv: srv, db: db, dsn: dsn, cfg: srv.cfg, logBuf: buf}
	waitFor(t, func() bool { return db.Revocations().Live() }, "revocation listener")
	return e
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// req is one request to the server. Each request comes from a new client
// IP unless ip is set, so anonymous budgets never interfere.
type req struct {
	method, path string
	body         any // marshalled as JSON unless a []byte or string
	auth         string
	headers      map[string]string
	ip           string
}

type resp struct {
	*httptest.ResponseRecorder
	t testing.TB
}

func (e *testEnv) do(r req) *resp {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.auth != "" {
		hr.Header.Set("Authorization", r.auth)
	}
	for k, v := range r.headers {
		if k == "Host" {
			hr.Host = v // net/http keeps Host out of the header map
		}
		hr.Header.Set(k, v)
	}
	ip := r.ip
	if ip == "" {
		n := e.ip.Add(1)
		ip = fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
	}
	hr.RemoteAddr = ip + ":40000"
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, hr)
	checkAgainstSpec(e.t, hr, w)
	return &resp{w, e.t}
}

// status fails the test unless the answer has the wanted status.
func (r *resp) status(want int) *resp {
	r.t.Helper()
	if r.Code != want {
		r.t.Fatalf("status = %d, want %d; body %s", r.Code, want, r.Body.String())
	}
	return r
}

// json decodes the body into a fresh value of type T.
func decodeAs[T any](r *resp) T {
	r.t.Helper()
	var v T
	if err := json.Unmarshal(r.Body.Bytes(), &v); err != nil {
		r.t.Fatalf("decode %q: %v", r.Body.String(), err)
	}
	return v
}

type apiError struct {
	Error struct {
		Code      string              `json:"code"`
		Message   string              `json:"message"`
		Fields    map[string][]string `json:"fields"`
		RequestID string              `json:"request_id"`
	} `json:"error"`
}

// errorCode asserts the error status and code and returns the error.
func (r *resp) errorCode(status int, code string) apiError {
	r.t.Helper()
	r.status(status)
	e := decodeAs[apiError](r)
	if e.Error.Code != code {
		r.t.Fatalf("error code = %q, want %q; body %s", e.Error.Code, code, r.Body.String())
	}
	if e.Error.RequestID == "" || e.Error.RequestID != r.Header().Get("X-Request-ID") {
		r.t.Fatalf("request_id %q must equal X-Request-ID %q", e.Error.RequestID, r.Header().Get("X-Request-ID"))
	}
	return e
}

// fieldError asserts a validation error on field.
func (r *resp) fieldError(field string) {
	r.t.Helper()
	e := r.errorCode(http.StatusBadRequest, "validation_failed")
	if len(e.Error.Fields[field]) == 0 {
		r.t.Fatalf("want a field error on %q, got %v", field, e.Error.Fields)
	}
}

// user is a registered, logged-in account.
type user struct {
	id, username, password string
	access, refresh        string
}

func (u *user) bearer() string { return "Bearer " + u.access }

var userSeq atomic.Uint64

// newUser registers and logs in a fresh user.
func (e *testEnv) newUser() *user {
	e.t.Helper()
	u := &user{username: fmt.Sprintf("user%d_%d", time.Now().UnixNano()%1e9, userSeq.Add(1)), password: "Sturdy-pass-phrase-42"}
	got := decodeAs[userJSON](e.do(req{method: "POST", path: "/api/register/",
		body: map[string]string{"username": u.username, "password": u.password}}).status(http.StatusCreated))
	u.id = got.ID.String()
	e.login(u)
	return u
}

// login opens a new session for u and keeps its tokens.
func (e *testEnv) login(u *user) tokenPairJSON {
	e.t.Helper()
	tok := decodeAs[tokenPairJSON](e.do(req{method: "POST", path: "/api/token/",
		body: map[string]string{"username": u.username, "password": u.password}}).status(http.StatusOK))
	u.access, u.refresh = tok.Access, tok.Refresh
	return tok
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
