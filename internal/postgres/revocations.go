package postgres

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Revocations answers "is this session revoked?" from memory. Each instance
// keeps the sessions revoked within the lifetime of an access token, loads
// them when its listener connects and learns of new ones through
// LISTEN/NOTIFY. The memory is trusted only while the listener has shown
// signs of life within the last few seconds; otherwise (listener down, or a
// connection that died silently) it asks the database, so a revocation is
// never missed, only slower to check.
type Revocations struct {
	pool interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}
	connCfg *pgx.ConnConfig
	keep    time.Duration // how long a revoked session's tokens can still be presented
	log     *slog.Logger

	heard   atomic.Int64 // unix nanoseconds of the listener's last sign of life; 0 when down
	mu      sync.RWMutex
	revoked map[uuid.UUID]time.Time // session id -> when it may be forgotten
}

// Listener timing: a quiet connection is sent a notification of its own
// (echo) every pingEvery, which must come back within pingWait, and the
// memory is trusted for staleAfter after the last sign of life.
const (
	pingEvery  = 5 * time.Second
	pingWait   = 3 * time.Second
	staleAfter = 3 * pingEvery
)

// IsRevoked reports whether the session of a token issued at issuedAt was
// revoked. Memory answers while the listener is live and the token is
// younger than keep: memory holds every revocation of the last keep, and a
// token cannot outlive a revocation it predates by more. An older token
// (one issued under a longer token lifetime before a restart, say) may
// belong to a session revoked before that window, so the database answers;
// a session whose row is gone counts as revoked.
func (r *Revocations) IsRevoked(ctx context.Context, sid uuid.UUID, issuedAt time.Time) (bool, error) {
	if r.Live() && time.Since(issuedAt) < r.keep {
		r.mu.RLock()
		_, ok := r.revoked[sid]
		r.mu.RUnlock()
		return ok, nil
	}
	var revoked bool
	err := r.pool.QueryRow(ctx, `SELECT revoked_at IS NOT NULL FROM sessions WHERE id = $1`, sid).Scan(&revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	return revoked, translate(err, "check revocation")
}

// Live reports whether the listener is connected, so checks are answered
// from memory.
func (r *Revocations) Live() bool {
	heard := r.heard.Load()
	return heard != 0 && time.Since(time.Unix(0, heard)) < staleAfter
}

func (r *Revocations) alive() { r.heard.Store(time.Now().UnixNano()) }

// add records revocations this instance made itself, so it honours them
// before its own NOTIFY comes back.
func (r *Revocations) add(ids ...uuid.UUID) {
	if len(ids) == 0 {
		return
	}
	until := time.Now().Add(r.keep)
	r.mu.Lock()
	for _, id := range ids {
		r.revoked[id] = until
	}
	r.mu.Unlock()
}

func (r *Revocations) forgetExpired(now time.Time) {
	r.mu.Lock()
	for id, until := range r.revoked {
		if now.After(until) {
			delete(r.revoked, id)
		}
	}
	r.mu.Unlock()
}

// Run keeps the listener connected until ctx ends.
func (r *Revocations) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := r.listen(ctx)
		r.heard.Store(0)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("revocation listener down; checking revocations in the database", "err", err)
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// errNoEcho: a notification the listener sent itself never came back. The
// usual cause is a transaction pooler between it and PostgreSQL, which
// hands the LISTEN and the connection's later traffic to different server
// sessions, so a revocation elsewhere would never be heard.
var errNoEcho = errors.New("postgres: the listener's own notification did not come back " +
	"(behind a transaction pooler such as PgBouncer? point LISTEN_DATABASE_URL at PostgreSQL itself)")

// echo sends a notification on the channel through the pool, the way a
// revocation is sent, and waits for it to arrive on conn: only then is the
// memory trusted, because only then would a revocation from another
// instance arrive too. (Sent on conn itself, it could come back through a
// pooler that happened to hand the LISTEN's server session to conn again.)
// Revocations heard meanwhile are recorded.
func (r *Revocations) echo(ctx context.Context, conn *pgx.Conn) error {
	token := "echo:" + uuid.NewString()
	ectx, cancel := context.WithTimeout(ctx, pingWait)
	defer cancel()
	var one int
	if err := r.pool.QueryRow(ectx, `SELECT 1 FROM pg_notify($1, $2)`, revocationChannel, token).Scan(&one); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ectx)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return errNoEcho
		}
		if err != nil {
			return err
		}
		if n.Payload == token {
			r.alive()
			return nil
		}
		if id, perr := uuid.Parse(n.Payload); perr == nil {
			r.add(id)
		}
	}
}

func (r *Revocations) listen(ctx context.Context) error {
	cfg := r.connCfg.Copy()
	// Keepalives notice a peer that vanished without closing the connection
	// (a NAT or load balancer dropping it) in seconds, not the kernel's minutes.
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}}
	cfg.DialFunc = dialer.DialContext
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_ = registerTypes(ctx, conn)
	// LISTEN before loading, so a revocation between the two is not lost.
	if _, err := conn.Exec(ctx, "LISTEN "+revocationChannel); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `SELECT id FROM sessions WHERE revoked_at > now() - make_interval(secs => $1)`,
		r.keep.Seconds())
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return err
	}
	r.add(ids...)
	if err := r.echo(ctx, conn); err != nil {
		return err
	}
	r.log.Info("revocation listener connected", "recent_revocations", len(ids))

	lastSweep := time.Now()
	for {
		if time.Since(lastSweep) > time.Minute {
			r.forgetExpired(time.Now())
			lastSweep = time.Now()
		}
		wctx, cancel := context.WithTimeout(ctx, pingEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			r.alive()
			if id, perr := uuid.Parse(n.Payload); perr == nil {
				r.add(id)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet: prove the connection still carries notifications.
			if err := r.echo(ctx, conn); err != nil {
				return err
			}
		default:
			return err
		}
	}
}
