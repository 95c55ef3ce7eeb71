// Package pgtest gives tests real, migrated PostgreSQL databases. It uses
// the server named by TEST_DATABASE_URL (which `make test` starts) or, when
// that is unset, starts a throwaway cluster itself with scripts/pg.sh:
// tests never skip for want of a database.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/taskmanager/internal/postgres"
)

var (
	mu       sync.Mutex
	server   string // superuser URL of the server's "postgres" database
	template string // name of the migrated template database
	stop     func()
)

// Main runs the package's tests with a PostgreSQL server available, then
// stops a server it started and runs cleanups in order (stopping the
// package's other servers, say). Call it from TestMain.
func Main(m *testing.M, cleanups ...func()) {
	// A TestMain that returns exits with m.Run's code.
	defer func() {
		Stop()
		for _, f := range cleanups {
			f()
		}
	}()
	m.Run()
}

// Stop stops the server pgtest started, if any; Main calls it.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if stop != nil {
		stop()
		stop = nil
	}
}

// URL returns the URL of a new, empty, fully migrated database that no
// other test uses.
func URL(tb testing.TB) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if err := ensureTemplate(); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	name := "t_" + randomHex(6)
	if err := exec1(server, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, template)); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	return withDatabase(server, name)
}

// Open returns a store on a new migrated database, closed when tb ends.
func Open(tb testing.TB) (*postgres.DB, string) {
	tb.Helper()
	return OpenWith(tb, postgres.Options{TokenTTL: 20 * time.Minute})
}

// OpenWith is Open with the store tuned as a server would tune it.
func OpenWith(tb testing.TB, opt postgres.Options) (*postgres.DB, string) {
	tb.Helper()
	dsn := URL(tb)
	db, err := postgres.Open(context.Background(), dsn, opt)
	if err != nil {
		tb.Fatalf("pgtest: open: %v", err)
	}
	tb.Cleanup(db.Close)
	return db, dsn
}

func ensureTemplate() error {
	if template != "" {
		return nil
	}
	server = os.Getenv("TEST_DATABASE_URL")
	if server == "" {
		var err error
		if server, stop, err = startCluster(); err != nil {
			return err
		}
	}
	name := "tmpl_" + randomHex(6)
	if err := exec1(server, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	ctx := context.Background()
	db, err := postgres.Open(ctx, withDatabase(server, name), postgres.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	template = name
	return nil
}

func exec1(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startCluster starts a disposable cluster with the repository's script.
func startCluster() (string, func(), error) {
	root, err := repoRoot()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	script := filepath.Join(root, "scripts", "pg.sh")
	cluster := filepath.Join(dir, "pg")
	out, err := exec.Command("bash", script, "start", cluster, fmt.Sprint(port), "fast").CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("start PostgreSQL: %v\n%s", err, out)
	}
	stop := func() {
		_ = exec.Command("bash", script, "stop", cluster).Run()
		_ = os.RemoveAll(dir)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), stop, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
