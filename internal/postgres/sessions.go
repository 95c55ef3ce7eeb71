package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acme/taskmanager/internal/task"
)

// revocationChannel is the LISTEN/NOTIFY channel that carries the id of
// every revoked session to every instance.
const revocationChannel = "session_revoked"

// SessionStore implements task.SessionStore.
type SessionStore struct{ db *DB }

// Sessions returns the session store.
func (db *DB) Sessions() *SessionStore { return &SessionStore{db: db} }

const sessionColumns = `id, user_id, created_at, last_used_at, expires_at, user_agent, ip`

func scanSession(row pgx.Row) (*task.Session, error) {
	var s task.Session
	err := row.Scan(&s.ID, &s.UserID, &s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt, &s.UserAgent, &s.IP)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// revokeSessions revokes the live sessions matching where and announces
// each on the revocation channel; NOTIFY is delivered at commit, so no
// instance hears of a revocation that rolls back.
func revokeSessions(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]uuid.UUID, error) {
	q := `WITH r AS (UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL AND ` + where + ` RETURNING id)
		SELECT id, pg_notify('` + revocationChannel + `', id::text)::text FROM r`
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (uuid.UUID, error) {
		var id uuid.UUID
		var ignored string
		return id, r.Scan(&id, &ignored)
	})
}

// CreateSession records a login and its first refresh token. A login
// beyond task.MaxSessionsPerUser live sessions revokes the oldest others
// in the same transaction.
func (s *SessionStore) CreateSession(ctx context.Context, sess *task.Session, refreshHash []byte, refreshExpires time.Time) error {
	return s.db.revoking(ctx, "create session", func(tx pgx.Tx, revoke revokeFunc) error {
		// The user row lock waits for a deactivation in flight and re-reads
		// is_active after it, so a login cannot slip a session past it; it
		// also serialises the user's logins, so the quota below is exact.
		const q = `INSERT INTO sessions (id, user_id, expires_at, user_agent, ip)
			SELECT $1, u.id, $3, $4, $5 FROM users u WHERE u.id = $2 AND u.is_active FOR NO KEY UPDATE
			RETURNING created_at, last_used_at`
		err := tx.QueryRow(ctx, q, sess.ID, sess.UserID, refreshExpires, sess.UserAgent, sess.IP).
			Scan(&sess.CreatedAt, &sess.LastUsedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return task.ErrBadCredentials
		}
		if err != nil {
			return err
		}
		sess.ExpiresAt = refreshExpires
		_, err = tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`,
			refreshHash, sess.ID, refreshExpires)
		if err != nil {
			return err
		}
		// The new session is kept whatever its created_at: a login that
		// waited for the lock started before the ones that overtook it.
		_, err = revoke(`id IN (SELECT id FROM sessions WHERE user_id = $1 AND id <> $2 AND client_id IS NULL
			AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC, id DESC OFFSET $3)`,
			sess.UserID, sess.ID, task.MaxSessionsPerUser-1)
		return err
	})
}

// RotateRefreshToken consumes oldHash with a single conditional UPDATE, so
// of concurrent refreshes of one token exactly one sees used_at IS NULL.
func (s *SessionStore) RotateRefreshToken(ctx context.Context, oldHash, newHash []byte, newExpires time.Time) (*task.Session, error) {
	var sess *task.Session
	var reusedIn uuid.UUID
	err := s.db.tx(ctx, "rotate refresh token", func(tx pgx.Tx) error {
		var sid uuid.UUID
		err := tx.QueryRow(ctx, `UPDATE refresh_tokens SET used_at = now()
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING session_id`, oldHash).Scan(&sid)
		if errors.Is(err, pgx.ErrNoRows) {
			var used *time.Time
			err = tx.QueryRow(ctx, `SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1`, oldHash).Scan(&sid, &used)
			if err == nil && used != nil {
				reusedIn = sid
				return task.ErrTokenReused
			}
			if err == nil || errors.Is(err, pgx.ErrNoRows) {
				return task.ErrInvalidToken
			}
			return err
		}
		if err != nil {
			return err
		}
		const q = `UPDATE sessions s SET last_used_at = now(), expires_at = $2
			FROM users u WHERE s.id = $1 AND u.id = s.user_id AND u.is_active
			AND s.revoked_at IS NULL AND s.expires_at > now()
			RETURNING s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.user_agent, s.ip`
		sess, err = scanSession(tx.QueryRow(ctx, q, sid, newExpires))
		if errors.Is(err, pgx.ErrNoRows) {
			return task.ErrTokenRevoked // logged out, revoked, or its user deactivated
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`,
			newHash, sid, newExpires)
		return err
	})
	if errors.Is(err, task.ErrTokenReused) {
		if rerr := s.revokeByID(ctx, reusedIn); rerr != nil {
			return nil, rerr
		}
	}
	return sess, err
}

// CheckRefreshToken reports whether hash is an unused, unexpired refresh
// token of a live session of an active user.
func (s *SessionStore) CheckRefreshToken(ctx context.Context, hash []byte) error {
	var ok bool
	err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM refresh_tokens rt
		JOIN sessions s ON s.id = rt.session_id JOIN users u ON u.id = s.user_id
		WHERE rt.token_hash = $1 AND rt.used_at IS NULL AND rt.expires_at > now()
		AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active)`, hash).Scan(&ok)
	if err != nil {
		return translate(err, "check refresh token")
	}
	if !ok {
		return task.ErrInvalidToken
	}
	return nil
}

// RevokeSessionByRefreshToken logs out the session of a current refresh
// token. A consumed token is reuse: its session dies and ErrTokenReused says so.
func (s *SessionStore) RevokeSessionByRefreshToken(ctx context.Context, hash []byte) (*task.Session, error) {
	var sess task.Session
	var used *time.Time
	err := s.db.pool.QueryRow(ctx, `SELECT s.id, s.user_id, rt.used_at
		FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
		WHERE rt.token_hash = $1 AND s.revoked_at IS NULL AND rt.expires_at > now()`, hash).
		Scan(&sess.ID, &sess.UserID, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrInvalidToken
	}
	if err != nil {
		return nil, translate(err, "find session")
	}
	if err := s.revokeByID(ctx, sess.ID); err != nil {
		return nil, err
	}
	if used != nil {
		return &sess, task.ErrTokenReused
	}
	return &sess, nil
}

func (s *SessionStore) revokeByID(ctx context.Context, id uuid.UUID) error {
	return s.revoke(ctx, `id = $1`, id)
}

func (s *SessionStore) revoke(ctx context.Context, where string, args ...any) error {
	return s.db.revoking(ctx, "revoke sessions", func(_ pgx.Tx, revoke revokeFunc) error {
		_, err := revoke(where, args...)
		return err
	})
}

// revokeFunc revokes the live sessions matching where and says how many.
type revokeFunc func(where string, args ...any) (int, error)

// revoking runs fn in a transaction in which revoke revokes sessions. Their
// ids reach this instance's memory once the transaction commits, as the
// NOTIFY reaches the other instances.
func (db *DB) revoking(ctx context.Context, what string, fn func(tx pgx.Tx, revoke revokeFunc) error) error {
	var ids []uuid.UUID
	err := db.tx(ctx, what, func(tx pgx.Tx) error {
		return fn(tx, func(where string, args ...any) (int, error) {
			got, err := revokeSessions(ctx, tx, where, args...)
			ids = append(ids, got...)
			return len(got), err
		})
	})
	if err == nil {
		db.revocations.add(ids...)
	}
	return err
}

// FindSessions returns one page of the user's live sessions, newest first.
func (s *SessionStore) FindSessions(ctx context.Context, userID uuid.UUID, limit int, cur *task.Cursor) (*task.Page[*task.Session], error) {
	return findPage(ctx, s.db, "find sessions", `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND client_id IS NULL AND revoked_at IS NULL AND expires_at > now()`, "", userID, limit, cur,
		scanSession, func(x *task.Session) (time.Time, uuid.UUID) { return x.CreatedAt, x.ID })
}

// RevokeSession logs out one of the user's sessions.
func (s *SessionStore) RevokeSession(ctx context.Context, userID, id uuid.UUID) error {
	return s.db.revoking(ctx, "revoke session", func(_ pgx.Tx, revoke revokeFunc) error {
		n, err := revoke(`id = $1 AND user_id = $2 AND expires_at > now()`, id, userID)
		if err == nil && n == 0 {
			return task.ErrNotFound
		}
		return err
	})
}

// RevokeSessions logs out every session of the user but except.
func (s *SessionStore) RevokeSessions(ctx context.Context, userID, except uuid.UUID) error {
	return s.revoke(ctx, `user_id = $1 AND id <> $2`, userID, except)
}
