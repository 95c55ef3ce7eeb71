package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/config"
	"github.com/acme/taskmanager/internal/httpapi"
	"github.com/acme/taskmanager/internal/postgres"
	"github.com/acme/taskmanager/internal/ratelimit"
)

// serve serves the API until ctx ends, then drains in-flight requests.
func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv, "serve", stderr)
	if err != nil {
		return err
	}
	log, closeLog, err := newLogger(cfg, stdout)
	if err != nil {
		return err
	}
	defer closeLog()
	// zitadel/oidc logs through the default logger: make it ours.
	slog.SetDefault(log)

	for _, w := range cfg.Warnings {
		log.Warn("risky configuration", "warning", w)
	}
	if cfg.OAuthRSAKey == nil && !cfg.Production() { // production warned above: the OAuth server is off
		if cfg.OAuthRSAKey, err = devOAuthKey(devOAuthKeyFile); err != nil {
			return fmt.Errorf("development OAuth key: %w", err)
		}
		log.Info("OAUTH_RSA_KEY_FILE unset: signing OAuth tokens with the development key", "file", devOAuthKeyFile)
	}
	if cfg.MFAEncryptionKey == nil && !cfg.Production() { // production warned above: enrollment is off
		if cfg.MFAEncryptionKey, err = devMFAKey(devMFAKeyFile); err != nil {
			return fmt.Errorf("development MFA key: %w", err)
		}
		log.Info("MFA_ENCRYPTION_KEY unset: sealing TOTP secrets with the development key", "file", devMFAKeyFile)
	}
	// The port first: when another server has it, say so before anything
	// else is started, and never claim to serve.
	ln, err := listen(cfg.ListenAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCertFile != "" {
		// Loaded here rather than by ServeTLS, so a bad file stops the start
		// before it is announced.
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("TLS_CERT_FILE, TLS_KEY_FILE: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.OptionsFrom(cfg, log))
	if err != nil {
		return err
	}
	defer db.Close()
	go db.Revocations().Run(ctx)
	go purge(ctx, db, cfg.AuditRetention, log)

	rateStores, redisUp, closeRedis, err := ratelimit.Connect(ctx, cfg.RedisURL, cfg.RedisKeyPrefix, log)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	defer closeRedis()
	m, trail := observability(db, redisUp, log)
	// The trail outlives the HTTP server: the last requests' events are
	// stored after they drain, before the database closes.
	go trail.Run(context.WithoutCancel(ctx))
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := trail.Close(flushCtx); err != nil {
			log.Warn("audit events not stored before the deadline", "queued", trail.Len())
		}
	}()
	handler := httpapi.NewServer(httpapi.ConfigFrom(cfg), log, httpapi.Deps{
		Tokens: auth.NewTokens(httpapi.TokenConfig(cfg)), Hasher: auth.NewHasher(cfg.PasswordHashLimit),
		Tasks: db.Tasks(), Users: db.Users(), Sessions: db.Sessions(), Keys: db.Keys(),
		Revocations: db.Revocations(), OAuth: db.OAuth(), MFA: db.MFA(), Secrets: httpapi.SecretBox(cfg),
		Passkeys: httpapi.RelyingParty(cfg),
		Ping:     db.Ping, RateStore: rateStores, Now: time.Now, Metrics: m, Audit: trail,
	})
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, m, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		// The handler counts the contract's 16 KiB exactly; net/http refuses
		// what is far beyond it without reading it all.
		MaxHeaderBytes: httpapi.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:      tlsConfig,
	}
	base := baseURL(ln.Addr(), cfg.TLSCertFile != "", cfg.PublicURL)
	log.Info("listening", "addr", ln.Addr().String(), "url", base, "env", cfg.Env, "tls", cfg.TLSCertFile != "", "version", version)
	// For the person at the terminal; stdout is the JSON log.
	if cfg.DocsEnabled {
		fmt.Fprintf(stderr, "taskmanager: serving %s — interactive docs at %s/docs\n", base, base)
	} else {
		fmt.Fprintf(stderr, "taskmanager: serving %s\n", base)
	}

	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCertFile != "" {
			errc <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// newLogger writes JSON lines to stdout and, when LOG_FILE is set, to that
// file too.
func newLogger(cfg *config.Config, stdout io.Writer) (*slog.Logger, func(), error) {
	out, closeFn := stdout, func() {}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open LOG_FILE: %w", err)
		}
		out, closeFn = io.MultiWriter(stdout, f), func() { _ = f.Close() }
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	return slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})), closeFn, nil
}

// listen binds addr (LISTEN_ADDR). Its error names the variable and, when
// the port is taken, what to do about it.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		hint := "set LISTEN_ADDR to a free address"
		if host, port, perr := net.SplitHostPort(addr); perr == nil {
			if n, aerr := strconv.Atoi(port); aerr == nil && n > 0 && n < 65535 {
				hint = "e.g. LISTEN_ADDR=" + net.JoinHostPort(host, strconv.Itoa(n+1))
			}
		}
		return nil, fmt.Errorf("LISTEN_ADDR=%s: the port is already in use, probably by another server (another taskmanager?): stop it, or listen elsewhere (%s)", addr, hint)
	}
	return nil, fmt.Errorf("LISTEN_ADDR=%s: cannot listen: %w", addr, err)
}

// baseURL is where a client on this machine reaches the listener at addr:
// PUBLIC_URL when it is set; a wildcard address is shown as 127.0.0.1,
// which both it and the development ALLOWED_HOSTS accept.
func baseURL(addr net.Addr, secure bool, public *url.URL) string {
	if public != nil {
		return strings.TrimSuffix(public.String(), "/")
	}
	u := url.URL{Scheme: "http", Host: addr.String()}
	if secure {
		u.Scheme = "https"
	}
	if ta, ok := addr.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
		u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
	}
	return u.String()
}

// purge deletes dead sessions, refresh tokens and idempotency keys, and
// audit events older than retention, now and then. Every instance runs it;
// the deletes are idempotent.
func purge(ctx context.Context, db *postgres.DB, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := db.Purge(ctx); err != nil {
			log.Warn("purge failed", "err", err)
		} else if n > 0 {
			log.Info("purged expired sessions, refresh tokens and idempotency keys", "rows", n)
		}
		if n, err := db.Audit().PurgeAuditEvents(ctx, time.Now().Add(-retention)); err != nil {
			log.Warn("audit purge failed", "err", err)
		} else if n > 0 {
			log.Info("purged audit events past AUDIT_RETENTION", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
