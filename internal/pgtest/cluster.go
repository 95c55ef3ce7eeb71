package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Cluster is a PostgreSQL server of one test's own, which the test may
// stop and start again (a database restart under load) without touching
// the server other tests share.
type Cluster struct {
	// URL is the superuser URL of its "postgres" database.
	URL    string
	script string
	dir    string
	port   int
}

// NewCluster starts a cluster, stopped and removed when tb ends.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pgtest-own-")
	if err != nil {
		tb.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		script: filepath.Join(root, "scripts", "pg.sh"), dir: filepath.Join(dir, "pg"), port: port}
	tb.Cleanup(func() {
		_ = exec.Command("bash", c.script, "stop", c.dir).Run()
		_ = os.RemoveAll(dir)
	})
	c.Start(tb)
	return c
}

// Start starts the cluster (again).
func (c *Cluster) Start(tb testing.TB) {
	tb.Helper()
	if out, err := exec.Command("bash", c.script, "start", c.dir, fmt.Sprint(c.port), "fast").CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: start PostgreSQL: %v\n%s", err, out)
	}
}

// Stop stops it (pg_ctl -m fast: sessions are ended, nothing committed is lost).
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	if out, err := exec.Command("bash", c.script, "stop", c.dir).CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: stop PostgreSQL: %v\n%s", err, out)
	}
}

// CreateDatabase creates database name on the cluster and returns its URL.
func (c *Cluster) CreateDatabase(tb testing.TB, name string) string {
	tb.Helper()
	if err := exec1(c.URL, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	return withDatabase(c.URL, name)
}
