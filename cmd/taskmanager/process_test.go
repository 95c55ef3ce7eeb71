package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return &process{base: "http://" + a, cmd: cmd}
	case <-time.After(20 * time.Second):
		t.Fatal("the server process never logged its address")
		return nil
	}
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
		"JWT_SIGNING_KEY": strings.Repeat("proc-key", 8), "LISTEN_ADDR": "127.0.0.1:0", "RATE_LIMIT_USER": "10/minute",
	}
	var out, errOut lockedBuffer
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
