package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/acme/taskmanager/internal/audit"
	"github.com/acme/taskmanager/internal/metrics"
	"github.com/acme/taskmanager/internal/postgres"
)

// observability builds the metrics of a server on db and the audit trail
// that stores its security events. redisUp is nil without REDIS_URL: then
// no Redis gauge is exported, since counting locally is no fallback.
func observability(db *postgres.DB, redisUp func() bool, log *slog.Logger) (*metrics.Metrics, *audit.Trail) {
	m := metrics.New(version)
	m.Database(db.Ping, func() metrics.PoolStat { return db.PoolStat() })
	m.Health("taskmanager_revocation_listener_up",
		"1 while the revocation listener is connected (revocations answered from memory), 0 while every token is checked in the database.",
		db.Revocations().Live)
	if redisUp != nil {
		m.Health("taskmanager_redis_up",
			"1 while Redis answers and rate limits are shared, 0 while this instance counts them locally (the fallback).", redisUp)
	}
	trail := audit.New(db.Audit(), audit.Options{Dropped: m.AuditDropped, Written: m.AuditWritten, Failed: m.AuditFailed, Log: log})
	m.Gauge("audit_queue_length", "Audit events waiting to be stored.", func() float64 { return float64(trail.Len()) })
	return m, trail
}

// serveMetrics serves /metrics on addr (METRICS_ADDR), a listener of its
// own: never the public port. stop closes it.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("METRICS_ADDR=%s: the port is already in use (another taskmanager?): set METRICS_ADDR to a free address, or empty to serve no metrics", addr)
		}
		return nil, fmt.Errorf("METRICS_ADDR=%s: cannot listen: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { _ = srv.Serve(ln) }()
	log.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
