// Package postgres implements the domain stores on PostgreSQL with pgx.
// SQL lives next to its use, one file per aggregate; database failures leave
// this package as domain errors.
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/config"
	"github.com/acme/taskmanager/internal/task"
	"github.com/acme/taskmanager/migrations"
)

// DB is the connection pool and the stores built on it.
type DB struct {
	pool         *pgxpool.Pool
	revocations  *Revocations
	keyTouched   sync.Map // API key id -> when this instance last recorded its use
	maxTasks     int
	queryTimeout time.Duration
	searchBudget time.Duration
	searches     turns         // owner id -> the owner's search in progress
	searchSlots  chan struct{} // one per search running, at most half the pool
}

// Options tune Open.
type Options struct {
	// TokenTTL is the longest an access token lives (plus leeway): how long
	// a revoked session must be remembered.
	TokenTTL time.Duration
	// QueryTimeout, when positive, is every statement's time budget: the
	// database itself cancels a statement that runs longer, and the store
	// reports it as unavailable. Zero means no budget (migrations). It is
	// sent as the statement_timeout startup parameter, which PgBouncer
	// refuses unless told to ignore it; behind one, set statement_timeout
	// on the database role instead.
	QueryTimeout time.Duration
	// MaxTasksPerUser is how many tasks one user may hold; zero is no limit.
	MaxTasksPerUser int
	// SearchBudget bounds each statement of a search page (zero: 50 ms).
	// Tests of which rows a page holds raise it, so a busy machine cannot
	// cut their pages short.
	SearchBudget time.Duration
	// ListenURL, when set, is where the revocation listener connects
	// instead of url: LISTEN needs a session of its own, which a
	// transaction pooler (PgBouncer with pool_mode = transaction) in front
	// of the pool cannot give it.
	ListenURL string
	Logger    *slog.Logger
}

// OptionsFrom picks the stores' settings out of the process configuration,
// logging to log. serve and the tests both open the database through it, so
// they cannot drift apart.
func OptionsFrom(c *config.Config, log *slog.Logger) Options {
	opt := Options{
		TokenTTL:        c.AccessTokenTTL + auth.Leeway,
		QueryTimeout:    c.DBQueryTimeout,
		MaxTasksPerUser: c.MaxTasksPerUser,
		Logger:          log,
	}
	// Only a URL of its own: the listener otherwise follows the URL Open gets.
	if c.ListenDatabaseURL != c.DatabaseURL {
		opt.ListenURL = c.ListenDatabaseURL
	}
	return opt
}

// Open connects a pool to url. It does not wait for the database: a server
// starts while PostgreSQL is down and becomes ready when it answers.
func Open(ctx context.Context, url string, opt Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("postgres: DATABASE_URL cannot be parsed")
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns()
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if opt.QueryTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(max(opt.QueryTimeout.Milliseconds(), 1), 10)
	}
	cfg.AfterConnect = registerTypes
	listenCfg := cfg.ConnConfig.Copy()
	if opt.ListenURL != "" && opt.ListenURL != url {
		if listenCfg, err = pgx.ParseConfig(opt.ListenURL); err != nil {
			return nil, errors.New("postgres: LISTEN_DATABASE_URL cannot be parsed")
		}
		if opt.QueryTimeout > 0 {
			listenCfg.RuntimeParams["statement_timeout"] = cfg.ConnConfig.RuntimeParams["statement_timeout"]
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.TokenTTL <= 0 {
		opt.TokenTTL = time.Hour
	}
	db := &DB{pool: pool, maxTasks: max(opt.MaxTasksPerUser, 0), queryTimeout: opt.QueryTimeout,
		searchBudget: cmp.Or(opt.SearchBudget, searchStatementBudget),
		searchSlots:  make(chan struct{}, max(cfg.MaxConns/2, 1))}
	db.revocations = &Revocations{
		pool:    pool,
		connCfg: listenCfg,
		keep:    opt.TokenTTL,
		log:     opt.Logger,
		revoked: make(map[uuid.UUID]time.Time),
	}
	return db, nil
}

// defaultMaxConns sizes the pool when DATABASE_URL does not. A request
// holds a connection for one short statement, and the database's share of
// that time is small, so with pgx's default (as many connections as CPUs,
// at least 4) requests queue for a connection while PostgreSQL idles: on
// 2 CPUs, 8 connections served 64 clients' task lists about a quarter
// faster than 4 did. Twice the CPUs beyond that keeps a large host from
// opening more connections than a PostgreSQL serves well.
func defaultMaxConns() int32 { return int32(max(8, 2*runtime.NumCPU())) }

// registerTypes teaches a connection google/uuid. Without it pgx sends each
// id argument as text, after formatting an error for the failed binary
// attempt, and reads each id column as a string that uuid then parses.
func registerTypes(_ context.Context, c *pgx.Conn) error {
	m := c.TypeMap()
	pgxuuid.Register(m)
	m.RegisterType(&pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}})
	return nil
}

// uuidCodec reads binary ids straight into a uuid.UUID. pgx asks the codec
// before it falls back to a target's sql.Scanner, and it prefers that
// Scanner to pgxuuid's scan wrapper, so the wrapper is applied here.
type uuidCodec struct{ pgxuuid.UUIDCodec }

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if wrap, next, ok := pgxuuid.TryWrapUUIDScanPlan(target); ok {
		if plan := c.UUIDCodec.PlanScan(m, oid, format, next); plan != nil {
			wrap.SetNext(plan)
			return wrap
		}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

// Revocations returns the revocation checker; its Run must be started for
// the in-memory path.
func (db *DB) Revocations() *Revocations { return db.revocations }

// Purge deletes sessions, refresh tokens, idempotency keys, mfa_tokens and
// WebAuthn ceremonies that can no longer be used.
// A revoked or expired session's row outlives every access token it
// refuses: the database answers a missing session as revoked, but an
// instance answering from memory knows only the revocations its listener
// loaded from these rows.
func (db *DB) Purge(ctx context.Context) (int64, error) {
	keepRows := max(48*time.Hour, 2*db.revocations.keep)
	var n int64
	err := db.tx(ctx, "purge", func(tx pgx.Tx) error {
		// A backlog (after an outage, a mass revocation) may take longer
		// than a request's time budget; the purge is not a request.
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_at < now() - make_interval(secs => $1)
			OR revoked_at < now() - make_interval(secs => $1)`, keepRows.Seconds())
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		for _, table := range []string{"refresh_tokens", "idempotency_keys", "mfa_tokens", "webauthn_ceremonies"} {
			tag, err = tx.Exec(ctx, `DELETE FROM `+table+` WHERE expires_at < now()`)
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	return n, err
}

// Close closes every connection.
func (db *DB) Close() { db.pool.Close() }

// PoolStat is the connection pool's statistics, for the metrics.
func (db *DB) PoolStat() *pgxpool.Stat { return db.pool.Stat() }

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return translate(db.pool.Ping(ctx), "ping")
}

// Migrate applies every pending migration. A session lock keeps two
// instances starting together from migrating at once.
func (db *DB) Migrate(ctx context.Context) error {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return translate(err, "migrate")
	}
	return nil
}

// tx runs fn in a transaction, committing when it returns nil.
func (db *DB) tx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, db.pool, fn)
	return translate(err, what)
}

// translate turns a pgx failure into a domain error. Domain errors pass
// through; an unreachable database is EUNAVAILABLE (the client may retry);
// anything else is internal and keeps its cause for the log.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var de *task.Error
	if errors.As(err, &de) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "22021" || pgErr.Code == "22P05") {
		// NUL or bytes that are not UTF-8 in some input: the client's fault.
		return task.Errorf(task.EBADREQUEST, "Request contains characters that cannot be stored.")
	}
	if unavailable(err) {
		return task.ErrUnavailable.WithCause(fmt.Errorf("postgres: %s: %w", what, err))
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P0x: the server is shutting down
		// or restarting; 53300: too many connections; 57014: the statement
		// was cancelled, by its time budget or because the caller gave up.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0") ||
			pgErr.Code == "53300" || pgErr.Code == "57014"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
