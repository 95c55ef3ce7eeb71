package task

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// TaskStore persists tasks. Every method takes the owner's id and acts only
// on that owner's rows: another user's task is ErrNotFound.
type TaskStore interface {
	FindTaskByID(ctx context.Context, ownerID, id uuid.UUID) (*Task, error)
	FindTasks(ctx context.Context, f TaskFilter) (*Page[*Task], error)
	// CreateTask stores t; ErrQuotaExceeded when the owner already holds
	// the most tasks the store allows.
	CreateTask(ctx context.Context, t *Task) error
	// CreateTaskOnce is CreateTask under one of t.OwnerID's idempotency
	// keys. The first call with key stores t and the reply that render
	// makes of it in one transaction, holding key while it runs: a call
	// meanwhile gets ErrIdempotencyInProgress. A later call with the same
	// key and fingerprint within IdempotencyTTL creates nothing and returns
	// the stored reply, replayed; another fingerprint is
	// ErrIdempotencyKeyReused. A failed call, render's error included,
	// stores nothing.
	CreateTaskOnce(ctx context.Context, t *Task, key IdempotencyKey, render func(*Task) (Reply, error)) (r *Reply, replayed bool, err error)
	// UpdateTask applies upd and returns the new task; ErrPrecondition when
	// upd.IfMatch does not match the stored version.
	UpdateTask(ctx context.Context, ownerID, id uuid.UUID, upd TaskUpdate) (*Task, error)
	DeleteTask(ctx context.Context, ownerID, id uuid.UUID, ifMatch IfMatch) error
}

// UserStore persists accounts.
type UserStore interface {
	FindUserByID(ctx context.Context, id uuid.UUID) (*User, error)
	// FindUserByUsername matches case-insensitively.
	FindUserByUsername(ctx context.Context, username string) (*User, error)
	FindUsers(ctx context.Context, limit int, cursor *Cursor) (*Page[*User], error)
	// CreateUser fails with a validation error on username when it is taken.
	CreateUser(ctx context.Context, u *User) error
	// UpdateUser changes the flags on behalf of actorID, serialised against
	// every other such change: ErrForbidden unless the actor is an active
	// admin by then, a conflict if no active admin would remain.
	// Deactivation revokes every session and key of the user in the same
	// transaction.
	UpdateUser(ctx context.Context, actorID, id uuid.UUID, upd UserUpdate) (*User, error)
	// SetPassword stores a new hash and revokes every session but keep, and
	// every API key too when revokeKeys is set.
	SetPassword(ctx context.Context, id uuid.UUID, hash string, keep uuid.UUID, revokeKeys bool) error
}

// SessionStore persists logins and their rotating refresh tokens.
type SessionStore interface {
	// CreateSession records a login and its first refresh token hash; past
	// MaxSessionsPerUser live sessions it revokes the user's oldest ones.
	CreateSession(ctx context.Context, s *Session, refreshHash []byte, refreshExpires time.Time) error
	// RotateRefreshToken consumes oldHash and records newHash in its session,
	// atomically: of concurrent calls with one oldHash at most one succeeds.
	// A consumed token revokes its whole session and returns ErrTokenReused.
	RotateRefreshToken(ctx context.Context, oldHash, newHash []byte, newExpires time.Time) (*Session, error)
	// CheckRefreshToken reports whether a refresh token is the current one
	// of a live session of an active user; ErrInvalidToken if not.
	CheckRefreshToken(ctx context.Context, hash []byte) error
	// RevokeSessionByRefreshToken logs out the session of a current refresh
	// token; a consumed one revokes it too but returns ErrTokenReused.
	RevokeSessionByRefreshToken(ctx context.Context, hash []byte) (*Session, error)
	// FindSessions returns a page of the user's live sessions, newest
	// first; its cursors are TimeCursor of created_at.
	FindSessions(ctx context.Context, userID uuid.UUID, limit int, cursor *Cursor) (*Page[*Session], error)
	RevokeSession(ctx context.Context, userID, id uuid.UUID) error
	// RevokeSessions revokes every live session of the user but except.
	RevokeSessions(ctx context.Context, userID, except uuid.UUID) error
}

// KeyStore persists API keys.
type KeyStore interface {
	// CreateKey stores k; ErrQuotaExceeded when the user already has
	// MaxKeysPerUser live (unrevoked, unexpired) keys.
	CreateKey(ctx context.Context, k *APIKey) error
	// FindKeys returns a page of the user's unrevoked keys, newest first,
	// paginated as FindSessions.
	FindKeys(ctx context.Context, userID uuid.UUID, limit int, cursor *Cursor) (*Page[*APIKey], error)
	// FindKeyByPrefix returns a live key of an active user, or ErrNotFound.
	FindKeyByPrefix(ctx context.Context, prefix string) (*APIKey, error)
	TouchKey(ctx context.Context, id uuid.UUID) error
	RevokeKey(ctx context.Context, userID, id uuid.UUID) error
}

// Revocations answers whether a session has been revoked, without a
// database round trip in the common case.
type Revocations interface {
	// IsRevoked reports whether the session of a token issued at issuedAt
	// was revoked.
	IsRevoked(ctx context.Context, sessionID uuid.UUID, issuedAt time.Time) (bool, error)
}

// Per-user quotas of stored credentials. A key over the quota is refused;
// a login over the session quota revokes the user's oldest session.
const (
	MaxKeysPerUser     = 50
	MaxSessionsPerUser = 100
)

// ErrTokenReused reports a refresh token presented after it was consumed.
var ErrTokenReused = refusal(EINVALIDTOKEN, "reused", "The refresh token was already used, so its session has been ended: sign in again.")
