// Package redistest gives tests a real Redis: the one TEST_REDIS_URL names
// (which `make test` starts) or a redis-server it starts itself.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process started for tests.
type Server struct {
	URL  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

var (
	mu     sync.Mutex
	shared *Server
)

// Main runs the package's tests and stops a server URL started.
func Main(m *testing.M) {
	// A TestMain that returns exits with m.Run's code.
	defer Stop()
	m.Run()
}

// Stop stops the server URL started, if any; Main calls it.
func Stop() {
	mu.Lock()
	s := shared
	shared = nil
	mu.Unlock()
	if s != nil {
		s.Stop()
	}
}

// URL returns the URL of a Redis shared by the package's tests.
func URL(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	mu.Lock()
	defer mu.Unlock()
	if shared == nil {
		s, err := start()
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		shared = s
	}
	return shared.URL
}

// Start starts a Redis of the test's own, stopped when the test ends; the
// test may stop it earlier to see how its code copes.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func start() (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return startOn(port)
}

func startOn(port int) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: run `make test` (it installs it) or apt-get install redis-server")
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no",
		"--dir", os.TempDir())
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), port: port, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	opts, _ := redis.ParseURL(s.URL)
	c := redis.NewClient(opts)
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c.Ping(context.Background()).Err() == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server and waits for it.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
	<-s.done
}

// Restart starts the stopped server again on its port, empty.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	n, err := startOn(s.port)
	if err != nil {
		tb.Fatalf("redistest: restart: %v", err)
	}
	s.cmd, s.done = n.cmd, n.done
}

// Pause stops the server answering without closing its port (SIGSTOP): a
// slow Redis, as a client sees it. Resume lets it go on.
func (s *Server) Pause(tb testing.TB) {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		tb.Fatalf("redistest: pause: %v", err)
	}
	tb.Cleanup(func() { _ = s.cmd.Process.Signal(syscall.SIGCONT) })
}

// Resume undoes Pause.
func (s *Server) Resume(tb testing.TB) {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		tb.Fatalf("redistest: resume: %v", err)
	}
}
