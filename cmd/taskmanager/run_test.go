package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/logtest"
	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/redistest"
)

func TestMain(m *testing.M) {
	// In-process servers generate their development OAuth key here, not
	// in the source tree.
	keyDir, err := os.MkdirTemp("", "taskmanager-oauthkey-")
	if err != nil {
		panic(err)
	}
	devOAuthKeyFile = filepath.Join(keyDir, "oauth_rsa_key.pem")
	devMFAKeyFile = filepath.Join(keyDir, "mfa_encryption_key")
	pgtest.Main(m, redistest.Stop, removeBinary, func() { _ = os.RemoveAll(keyDir) })
}

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// TestServeEndToEnd runs the binary's run on a free port against a real
// database: migrate, createuser, serve, the README's walk-through, and a
// clean exit on shutdown.
func TestServeEndToEnd(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "server.log")
	env := map[string]string{
		"DATABASE_URL":    pgtest.URL(t),
		"JWT_SIGNING_KEY": strings.Repeat("e2e-key-", 8),
		"LOG_FILE":        logFile,
	}
	ctx := context.Background()
	var out, errOut logtest.Buffer
	if err := run(ctx, []string{"taskmanager", "migrate"}, envFunc(env), nil, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v; %s", err, errOut.String())
	}
	const adminPassword = "Admin-pass-phrase-2024"
	if err := run(ctx, []string{"taskmanager", "createuser", "--username", "root", "--email", "root@example.com", "--admin"},
		envFunc(env), strings.NewReader(adminPassword+"\n"), &out, &errOut); err != nil {
		t.Fatalf("createuser: %v; %s", err, errOut.String())
	}
	if strings.Contains(out.String()+errOut.String(), adminPassword) {
		t.Fatal("createuser printed the password")
	}

	addr, stop := startServe(t, env)
	base := "http://" + addr
	call := func(method, path, token string, body any) (int, map[string]any) {
		t.Helper()
		return callJSON(t, base, method, path, token, body)
	}

	if code, _ := call("GET", "/healthz", "", nil); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	if code, _ := call("POST", "/api/register/", "", map[string]string{"username": "alice", "password": "correct-horse-battery-staple"}); code != 201 {
		t.Fatalf("register = %d", code)
	}
	code, tok := call("POST", "/api/token/", "", map[string]string{"username": "alice", "password": "correct-horse-battery-staple"})
	if code != 200 {
		t.Fatalf("token = %d", code)
	}
	access, _ := tok["access"].(string)
	if code, _ := call("POST", "/api/tasks/", access, map[string]string{"title": "Buy milk"}); code != 201 {
		t.Fatalf("create task = %d", code)
	}
	code, list := call("GET", "/api/tasks/", access, nil)
	if results, _ := list["results"].([]any); code != 200 || len(results) != 1 {
		t.Fatalf("list = %d %v", code, list)
	}
	code, adminTok := call("POST", "/api/token/", "", map[string]string{"username": "root", "password": adminPassword})
	if code != 200 {
		t.Fatalf("admin login = %d", code)
	}
	if code, _ := call("GET", "/api/admin/users/", adminTok["access"].(string), nil); code != 200 {
		t.Fatalf("createuser --admin made no admin: %d", code)
	}

	// createclient registers a client that can get a token at once.
	clientID, secret := registerClient(t, env, "--name", "Nightly export", "--grant", "client_credentials", "--scope", "tasks:read")
	r, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(clientID, secret)
	if resp, err := http.DefaultClient.Do(r); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("client credentials of a createclient client: %v %v (client %q)", err, resp, clientID)
	}
	if err := run(ctx, []string{"taskmanager", "createclient", "--name", "x", "--grant", "client_credentials", "--public"},
		envFunc(env), nil, &out, &errOut); err == nil || !strings.Contains(err.Error(), "confidential") {
		t.Fatalf("createclient of a public client-credentials client: %v, want a refusal", err)
	}

	// The whole request head may take 16 KiB; more is 431 before any handler,
	// also on a kept-alive connection (where net/http's own limit is looser).
	for _, tt := range []struct{ size, want int }{{8 << 10, http.StatusUnauthorized}, {17 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{8 << 10, http.StatusUnauthorized}, {20 << 10, http.StatusRequestHeaderFieldsTooLarge}, {16<<10 - 200, http.StatusUnauthorized}} {
		size, want := tt.size, tt.want
		r, _ := http.NewRequest("GET", base+"/api/tasks/", nil)
		r.Header.Set("X-Padding", strings.Repeat("p", size))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%d KiB of headers: status = %d, want %d", size>>10, resp.StatusCode, want)
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("serve after shutdown: %v, want nil", err)
	}
	logged, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(logged)), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("LOG_FILE line is not JSON: %q", line)
		}
	}
	if !strings.Contains(string(logged), `"msg":"listening","addr":"`+addr+`"`) {
		t.Errorf("LOG_FILE does not say serve listens on %s", addr)
	}
	if strings.Contains(string(logged), access) || strings.Contains(string(logged), "correct-horse") {
		t.Fatal("LOG_FILE holds a token or password")
	}
}

// served is a serve running in the background; done closes when run
// returns, with its result in err.
type served struct {
	done chan struct{}
	err  error
}

// startServe runs serve in the background on a free loopback port and
// returns its address, once /healthz answers, and a stop function that
// shuts it down and returns run's result.
func startServe(t *testing.T, env map[string]string) (string, func() error) {
	t.Helper()
	var stop func() error
	addr := serveOnFreePort(t, env, func(env map[string]string) (<-chan struct{}, func() string) {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr logtest.Buffer
		sv := &served{done: make(chan struct{})}
		go func() {
			sv.err = run(ctx, []string{"taskmanager", "serve"}, envFunc(env), nil, &stdout, &stderr)
			close(sv.done)
		}()
		stopThis := func() error {
			cancel()
			select {
			case <-sv.done:
				return sv.err
			case <-time.After(25 * time.Second):
				return errors.New("serve did not stop within 25 s of shutdown")
			}
		}
		t.Cleanup(func() { _ = stopThis() })
		stop = stopThis
		return sv.done, func() string { return fmt.Sprintf("%v\n%s%s", sv.err, stdout.String(), stderr.String()) }
	})
	return addr, stop
}

// callJSON sends one JSON request, with a Bearer token when given, and
// returns the status and the decoded body.
func callJSON(t *testing.T, base, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	r, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

func TestConfigurationProblemsAreReportedOneLineEach(t *testing.T) {
	env := map[string]string{"APP_ENV": "production", "CORS_ALLOW_ALL_ORIGINS": "true", "DATABASE_URL": "postgres://db/x"}
	var stdout, stderr logtest.Buffer
	err := run(context.Background(), []string{"taskmanager", "serve"}, envFunc(env), nil, &stdout, &stderr)
	if err == nil {
		t.Fatal("production with CORS_ALLOW_ALL_ORIGINS and no signing key must refuse to start")
	}
	for _, name := range []string{"CORS_ALLOW_ALL_ORIGINS", "JWT_SIGNING_KEY", "ALLOWED_HOSTS"} {
		n := 0
		for _, line := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(line, name) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("stderr has %d lines naming %s, want 1:\n%s", n, name, stderr.String())
		}
	}
	// check prints the same verdict without starting.
	var checkErr logtest.Buffer
	if run(context.Background(), []string{"taskmanager", "check"}, envFunc(env), nil, &stdout, &checkErr) == nil ||
		!strings.Contains(checkErr.String(), "CORS_ALLOW_ALL_ORIGINS") {
		t.Fatalf("check must refuse the same configuration:\n%s", checkErr.String())
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"taskmanager", "version"}, envFunc(nil), nil, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "taskmanager ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"taskmanager", "bogus"}, envFunc(nil), nil, &out, &errOut); err == nil {
		t.Fatal("an unknown command must fail")
	}
}

// TestEveryCommandAnswersHelp: --help and -h print the command's usage on
// stdout and succeed; an unknown flag or a stray argument prints it on
// stderr and exits 2.
func TestEveryCommandAnswersHelp(t *testing.T) {
	for _, cmd := range []string{"serve", "migrate", "createuser", "createclient", "check", "version"} {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {"help", cmd}} {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"taskmanager"}, args...), envFunc(nil), nil, &out, &errOut)
			if err != nil || !strings.HasPrefix(out.String(), "usage: taskmanager "+cmd) || errOut.Len() != 0 {
				t.Errorf("%v: err %v, stdout %q, stderr %q; want nil, the usage, nothing", args, err, out.String(), errOut.String())
			}
		}
		for _, bad := range []string{"--no-such-flag", "stray"} {
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"taskmanager", cmd, bad}, envFunc(nil), nil, &out, &errOut)
			if err == nil || exitCode(err) != 2 || !strings.HasPrefix(errOut.String(), "usage: taskmanager "+cmd) || out.Len() != 0 {
				t.Errorf("%s %s: err %v (exit %d), stdout %q, stderr %q; want exit 2 and the usage on stderr",
					cmd, bad, err, exitCode(err), out.String(), errOut.String())
			}
		}
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"taskmanager", "help"}, envFunc(nil), nil, &out, &errOut); err != nil ||
		!strings.Contains(out.String(), "createuser") {
		t.Errorf("help: %v %q", err, out.String())
	}
	for _, args := range [][]string{{}, {"bogus"}, {"help", "bogus"}} {
		err := run(context.Background(), append([]string{"taskmanager"}, args...), envFunc(nil), nil, &out, &errOut)
		if exitCode(err) != 2 {
			t.Errorf("%v: err %v, want a usage error (exit 2)", args, err)
		}
	}
}

// TestServeRefusesATakenPort: a second server on a taken address says so,
// naming LISTEN_ADDR, and never claims to serve.
func TestServeRefusesATakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	env := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "JWT_SIGNING_KEY": strings.Repeat("port-key", 8),
		"LISTEN_ADDR": taken.Addr().String()}
	var out, errOut logtest.Buffer
	err = run(context.Background(), []string{"taskmanager", "serve"}, envFunc(env), nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "LISTEN_ADDR="+taken.Addr().String()) || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("serve on a taken port: err = %v, want one naming LISTEN_ADDR and the taken port", err)
	}
	if strings.Contains(out.String(), `"listening"`) || strings.Contains(errOut.String(), "serving") {
		t.Fatalf("a server that could not bind announced itself:\n%s%s", out.String(), errOut.String())
	}
}

func TestBaseURL(t *testing.T) {
	public, _ := url.Parse("https://tasks.example.com")
	tests := []struct {
		addr   string
		secure bool
		public *url.URL
		want   string
	}{
		{"[::]:8000", false, nil, "http://127.0.0.1:8000"},
		{"0.0.0.0:8000", true, nil, "https://127.0.0.1:8000"},
		{"127.0.0.1:18000", false, nil, "http://127.0.0.1:18000"},
		{"[::1]:8000", false, nil, "http://[::1]:8000"},
		{"[::]:8000", false, public, "https://tasks.example.com"},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := baseURL(addr, tt.secure, tt.public); got != tt.want {
			t.Errorf("baseURL(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestCreateUserRejectsWeakPassword(t *testing.T) {
	env := map[string]string{"DATABASE_URL": pgtest.URL(t)}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"taskmanager", "createuser", "--username", "bob"}, envFunc(env),
		strings.NewReader("password1234\n"), &out, &errOut)
	if err == nil || !strings.Contains(fmt.Sprint(err), "too common") {
		t.Fatalf("createuser with a common password: err = %v, want a 'too common' refusal", err)
	}
}

// registerClient runs `taskmanager createclient args...` and returns the
// client_id and client_secret it prints.
func registerClient(t *testing.T, env map[string]string, args ...string) (clientID, secret string) {
	t.Helper()
	var out, errOut logtest.Buffer
	if err := run(context.Background(), append([]string{"taskmanager", "createclient"}, args...), envFunc(env), nil, &out, &errOut); err != nil {
		t.Fatalf("createclient: %v; %s", err, errOut.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "client_id: "); ok {
			clientID = v
		}
		if v, ok := strings.CutPrefix(line, "client_secret: "); ok {
			secret = v
		}
	}
	return clientID, secret
}
