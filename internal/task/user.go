package task

import (
	"time"

	"github.com/google/uuid"
)

// User is an account. PasswordHash is never sent to a client.
type User struct {
	ID           uuid.UUID
	Username     string
	Email        string
	PasswordHash string
	IsAdmin      bool
	IsActive     bool
	DateJoined   time.Time
}

// UserUpdate lists the account flags an administrator changes.
type UserUpdate struct {
	IsActive *bool
	IsAdmin  *bool
}

// Session is one login (one device). Its refresh tokens rotate within it;
// revoking it kills its access and refresh tokens at once.
type Session struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	UserAgent  string
	IP         string
}

// Scopes an API key may hold.
const (
	ScopeTasksRead  = "tasks:read"
	ScopeTasksWrite = "tasks:write"
)

// AllScopes lists every scope, in a stable order.
var AllScopes = []string{ScopeTasksRead, ScopeTasksWrite}

// APIKey is a long-lived credential acting as its owner within its scopes.
// Only a hash of the secret is stored.
type APIKey struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	Name       string
	Prefix     string
	Hash       []byte
	Scopes     []string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
}
