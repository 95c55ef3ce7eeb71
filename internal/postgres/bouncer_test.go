package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/pgtest"
	"github.com/acme/taskmanager/internal/postgres"
)

// TestListenerThroughATransactionPooler: a revocation listener whose
// connection goes through PgBouncer in transaction mode cannot hear other
// instances, and must not trust its memory; given a direct connection
// (LISTEN_DATABASE_URL) it does.
func TestListenerThroughATransactionPooler(t *testing.T) {
	dsn := pgtest.URL(t)
	pooled := pgtest.Bouncer(t, dsn) + "&default_query_exec_mode=cache_describe"
	for _, c := range []struct {
		name, listen string
		live         bool
	}{
		{"through the pooler", "", false},
		{"direct", dsn, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, err := postgres.Open(context.Background(), pooled, postgres.Options{TokenTTL: time.Hour, ListenURL: c.listen})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go db.Revocations().Run(ctx)
			deadline := time.Now().Add(4 * time.Second)
			for time.Now().Before(deadline) && !db.Revocations().Live() {
				time.Sleep(20 * time.Millisecond)
			}
			if got := db.Revocations().Live(); got != c.live {
				t.Fatalf("listener live = %v, want %v", got, c.live)
			}
		})
	}
}
