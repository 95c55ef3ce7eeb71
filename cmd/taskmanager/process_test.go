package main

import (
	"context"
	"crypto/tls"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/logtest"
	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/redistest"
)

var built struct {
	once sync.Once
	path string
	err  error
}

// binary builds bin/taskmanager once for the tests that need real processes.
func binary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "taskmanager-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "taskmanager")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = &buildError{err, string(out)}
		}
	})
	if built.err != nil {
		t.Fatalf("go build: %v", built.err)
	}
	return built.path
}

// removeBinary removes what binary built; TestMain runs it last.
func removeBinary() {
	if built.path != "" {
		_ = os.RemoveAll(filepath.Dir(built.path))
	}
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// process is a `taskmanager serve` running as its own OS process.
type process struct {
	base string
	cmd  *exec.Cmd
}

func startProcess(t *testing.T, env map[string]string) *process {
	t.Helper()
	var cmd *exec.Cmd
	addr := serveOnFreePort(t, env, func(env map[string]string) (<-chan struct{}, func() string) {
		var exited <-chan struct{}
		cmd, exited = spawnServe(t, env)
		return exited, func() string { return cmd.ProcessState.String() + " (its stderr is above)" }
	})
	return &process{base: "http://" + addr, cmd: cmd}
}

// spawnServe starts `taskmanager serve` with env (and PATH and HOME only),
// in a directory of its own, and interrupts it when the test ends; exited
// is closed once it has exited.
func spawnServe(t *testing.T, env map[string]string) (cmd *exec.Cmd, exited <-chan struct{}) {
	t.Helper()
	cmd = exec.Command(binary(t), "serve")
	cmd.Dir = t.TempDir() // where development keeps its generated OAuth key
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		<-done
	})
	return cmd, done
}

// serveOnFreePort starts a server through start on a loopback port that
// nothing listens on, and returns its address once its /healthz answers
// 200. start returns a channel closed when that server has exited, and
// what to say about its exit. Something else may take the port before the
// server binds it; the server then exits at once, and another port is
// tried.
func serveOnFreePort(t *testing.T, env map[string]string, start func(env map[string]string) (exited <-chan struct{}, why func() string)) string {
	t.Helper()
	scheme, client := "http", &http.Client{Timeout: time.Second}
	if env["TLS_CERT_FILE"] != "" {
		// Only to see it is up; the test checks the certificate itself.
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec
	}
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		env := maps.Clone(env)
		env["LISTEN_ADDR"] = addr
		if _, ok := env["METRICS_ADDR"]; !ok {
			// Servers of parallel tests must not fight over the default port.
			env["METRICS_ADDR"] = "127.0.0.1:0"
		}
		exited, why := start(env)
		if waitHealthy(t, client, scheme+"://"+addr+"/healthz", exited) {
			return addr
		}
		if attempt == 3 {
			t.Fatalf("the server on %s exited before its /healthz answered, the %d. time: %s", addr, attempt, why())
		}
		t.Logf("the server on %s exited before its /healthz answered: %s", addr, why())
	}
}

// waitHealthy polls url until it answers 200, and reports false if the
// server exits first. It fails the test after 20 s.
func waitHealthy(t *testing.T, client *http.Client, url string, exited <-chan struct{}) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				select {
				case <-exited: // another server on that port answered
					return false
				default:
					return true
				}
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("the server never answered %s with 200 within 20 s", url)
	return false
}

func (p *process) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	return callJSON(t, p.base, method, path, token, body)
}

// TestTwoProcesses: two server processes on one database and one Redis
// share revocations (within a second) and rate limits (one budget).
func TestTwoProcesses(t *testing.T) {
	dsn := pgtest.URL(t)
	env := map[string]string{
		"DATABASE_URL": dsn, "REDIS_URL": redistest.URL(t), "REDIS_KEY_PREFIX": "twoproc:" + filepath.Base(t.TempDir()) + ":",
		"JWT_SIGNING_KEY": strings.Repeat("proc-key", 8), "RATE_LIMIT_USER": "10/minute",
	}
	var out, errOut logtest.Buffer
	if err := run(context.Background(), []string{"taskmanager", "migrate"}, envFunc(env), nil, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	a, b := startProcess(t, env), startProcess(t, env)

	login := func(name string) string {
		creds := map[string]string{"username": name, "password": "Two-process-phrase-9"}
		if code, _ := a.call(t, "POST", "/api/register/", "", creds); code != 201 {
			t.Fatalf("register = %d", code)
		}
		_, tok := a.call(t, "POST", "/api/token/", "", creds)
		access, _ := tok["access"].(string)
		return access
	}

	// A logout on one process is honoured by the other within a second.
	access := login("revoked")
	if code, _ := b.call(t, "GET", "/api/me/", access, nil); code != 200 {
		t.Fatalf("the other process refuses a fresh token: %d", code)
	}
	if code, _ := a.call(t, "POST", "/api/logout/all/", access, nil); code != 204 {
		t.Fatalf("logout/all = %d", code)
	}
	start := time.Now()
	for {
		code, _ := b.call(t, "GET", "/api/me/", access, nil)
		if code == 401 {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the other process still answers %d for a revoked token after 1 s", code)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// One budget of 10 per minute for a user, whichever process answers.
	access = login("limited")
	if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 5*time.Second {
		time.Sleep(left + 50*time.Millisecond)
	}
	allowed := 0
	for i := range 16 {
		if code, _ := []*process{a, b}[i%2].call(t, "GET", "/api/tasks/", access, nil); code == 200 {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("two processes allowed %d requests together, want the shared 10", allowed)
	}
}
