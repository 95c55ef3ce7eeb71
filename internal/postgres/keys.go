package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acme/taskmanager/internal/task"
)

// KeyStore implements task.KeyStore.
type KeyStore struct{ db *DB }

// Keys returns the API key store.
func (db *DB) Keys() *KeyStore { return &KeyStore{db: db} }

// touchEvery is how stale last_used_at may get: a busy key costs one
// write a minute, not one per request.
const touchEvery = time.Minute

const keyColumns = `k.id, k.user_id, k.name, k.prefix, k.key_hash, k.scopes, k.created_at, k.expires_at, k.last_used_at`

func scanKey(row pgx.Row) (*task.APIKey, error) {
	var k task.APIKey
	err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.Hash, &k.Scopes, &k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// CreateKey stores k (its hash, never the secret) and fills in its id.
// ErrQuotaExceeded when the user already has task.MaxKeysPerUser live keys.
func (s *KeyStore) CreateKey(ctx context.Context, k *task.APIKey) error {
	return s.db.tx(ctx, "create key", func(tx pgx.Tx) error {
		err := underQuota(ctx, tx, k.UserID, task.MaxKeysPerUser, `SELECT count(*) FROM api_keys WHERE user_id = $1
			AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`)
		if err != nil {
			return err
		}
		const q = `INSERT INTO api_keys (user_id, name, prefix, key_hash, scopes, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at`
		return tx.QueryRow(ctx, q, k.UserID, k.Name, k.Prefix, k.Hash, k.Scopes, k.ExpiresAt).Scan(&k.ID, &k.CreatedAt)
	})
}

// FindKeys returns one page of the user's keys that are not revoked,
// newest first; expired keys are listed (they show when they expired).
func (s *KeyStore) FindKeys(ctx context.Context, userID uuid.UUID, limit int, cur *task.Cursor) (*task.Page[*task.APIKey], error) {
	return findPage(ctx, s.db, "find keys", `SELECT `+keyColumns+` FROM api_keys k WHERE k.user_id = $1 AND k.revoked_at IS NULL`,
		"k.", userID, limit, cur, scanKey, func(k *task.APIKey) (time.Time, uuid.UUID) { return k.CreatedAt, k.ID })
}

// FindKeyByPrefix returns the live key with prefix, if its owner is active.
func (s *KeyStore) FindKeyByPrefix(ctx context.Context, prefix string) (*task.APIKey, error) {
	k, err := scanKey(s.db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.prefix = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND u.is_active`, prefix))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, task.ErrNotFound
	}
	return k, translate(err, "find key")
}

// TouchKey records that the key was used. It writes at most once a minute
// per key, so a busy key does not turn every read into a write.
func (s *KeyStore) TouchKey(ctx context.Context, id uuid.UUID) error {
	// This instance skips the round trip while its own last touch is fresh;
	// the WHERE clause keeps other instances from writing more often either.
	now := time.Now()
	if last, ok := s.db.keyTouched.Load(id); ok && now.Sub(last.(time.Time)) < touchEvery {
		return nil
	}
	_, err := s.db.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))`, id, touchEvery.Seconds())
	if err == nil {
		s.db.keyTouched.Store(id, now)
	}
	return translate(err, "touch key")
}

// RevokeKey revokes one of the user's keys.
func (s *KeyStore) RevokeKey(ctx context.Context, userID, id uuid.UUID) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = now()
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, id, userID)
	if err != nil {
		return translate(err, "revoke key")
	}
	if tag.RowsAffected() == 0 {
		return task.ErrNotFound
	}
	return nil
}

// revokeKeysOf revokes every live API key of the user.
func revokeKeysOf(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	_, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, userID)
	return err
}

// underQuota holds the active user userID's row until the transaction
// ends and checks that count (a query of $1, the user) is under limit:
// ErrQuotaExceeded if not, ErrInvalidToken for a user gone or inactive.
// The row lock serialises the user's creations, so the count sees every
// one committed before it, and waits for a deactivation in flight: nothing
// is created for a user being deactivated (is_active is re-read once the
// lock is granted).
func underQuota(ctx context.Context, tx pgx.Tx, userID uuid.UUID, limit int, count string) error {
	tag, err := tx.Exec(ctx, `SELECT FROM users WHERE id = $1 AND is_active FOR NO KEY UPDATE`, userID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return task.ErrInvalidToken
	}
	var n int
	if err := tx.QueryRow(ctx, count, userID).Scan(&n); err != nil {
		return err
	}
	if n >= limit {
		return task.ErrQuotaExceeded
	}
	return nil
}
