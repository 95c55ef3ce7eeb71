package postgres

import (
	"context"
	"testing"
)

// The pool has at least 8 connections unless DATABASE_URL sizes it; opening
// does not connect, so no server is needed.
func TestPoolSize(t *testing.T) {
	if n := defaultMaxConns(); n < 8 {
		t.Fatalf("default pool of %d connections", n)
	}
	for url, want := range map[string]int32{
		"postgres://u@127.0.0.1:1/db":                   defaultMaxConns(),
		"postgres://u@127.0.0.1:1/db?pool_max_conns=3":  3,
		"host=127.0.0.1 port=1 user=u pool_max_conns=5": 5,
	} {
		db, err := Open(context.Background(), url, Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		if got := db.pool.Config().MaxConns; got != want {
			t.Errorf("Open(%q): %d connections, want %d", url, got, want)
		}
		db.Close()
	}
}
