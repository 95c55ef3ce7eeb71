package task

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
)

// OAuth scopes beyond the task scopes API keys hold (API.md: OAuth 2.0 and
// OpenID Connect).
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

// OAuthScopes lists every scope a client may be registered for.
var OAuthScopes = []string{ScopeTasksRead, ScopeTasksWrite, ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess}

// OAuth grant types a client may be registered for. There is no implicit
// and no password grant.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// AuthCodeTTL is how long an authorization code may be redeemed, and
// AuthRequestTTL how long a user has to sign in and consent.
const (
	AuthCodeTTL    = 60 * time.Second
	AuthRequestTTL = 10 * time.Minute
)

// OAuthClient is an application registered to act for users (or for
// itself, with client credentials). Only a hash of a confidential client's
// secret is stored; a public client has none.
type OAuthClient struct {
	ID           uuid.UUID
	ClientID     string
	Name         string
	SecretHash   []byte
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string
	CreatedAt    time.Time
}

// Confidential reports whether the client authenticates with a secret.
func (c *OAuthClient) Confidential() bool { return c.SecretHash != nil }

// Allows reports whether the client is registered for grant.
func (c *OAuthClient) Allows(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// AuthRequest is one run of the authorization code flow, from
// /oauth/authorize to the code's redemption.
type AuthRequest struct {
	ID            uuid.UUID
	ClientID      uuid.UUID // OAuthClient.ID
	Client        string    // OAuthClient.ClientID
	RedirectURI   string
	State         string
	Nonce         string
	Scopes        []string
	ResponseMode  string
	CodeChallenge string     // S256 only
	UserID        *uuid.UUID // who signed in
	AuthTime      time.Time
	Done          bool // signed in and consented: a code may be issued
	CreatedAt     time.Time
	ExpiresAt     time.Time
	SessionID     *uuid.UUID // the grant its code issued, once redeemed
}

// Grant is what an OAuth token acts on: a session bound to a client, for
// a user or (client credentials) for the client alone.
type Grant struct {
	SessionID uuid.UUID
	ClientID  uuid.UUID
	Client    string // OAuthClient.ClientID
	UserID    *uuid.UUID
	Scopes    []string
	AuthTime  time.Time
	ExpiresAt time.Time
}

// Consent is a user's standing permission for a client and scope set.
type Consent struct {
	ClientID   string // the client's public client_id
	ClientName string
	Scopes     []string
	CreatedAt  time.Time
}

// OAuthStore persists OAuth clients, authorization requests and codes,
// grants and consents. Grants are sessions: they are revoked through the
// session revocation machinery.
type OAuthStore interface {
	CreateClient(ctx context.Context, c *OAuthClient) error
	FindClients(ctx context.Context, limit int, cursor *Cursor) (*Page[*OAuthClient], error)
	// FindClientByClientID returns a live (not deleted) client, or ErrNotFound.
	FindClientByClientID(ctx context.Context, clientID string) (*OAuthClient, error)
	// DeleteClient deletes a client and revokes every grant it was issued.
	DeleteClient(ctx context.Context, id uuid.UUID) error

	CreateAuthRequest(ctx context.Context, a *AuthRequest) error
	// FindAuthRequest returns an unexpired request, or ErrNotFound.
	FindAuthRequest(ctx context.Context, id uuid.UUID) (*AuthRequest, error)
	// SignInAuthRequest records who signed in, in which browser (the hash
	// of its flow cookie).
	SignInAuthRequest(ctx context.Context, id, userID uuid.UUID, authTime time.Time, browserHash []byte) error
	// ApproveAuthRequest records consent, given in the browser that signed in.
	ApproveAuthRequest(ctx context.Context, id uuid.UUID, browserHash []byte) error
	// SaveAuthCode binds a code (its hash) to an approved request.
	SaveAuthCode(ctx context.Context, id uuid.UUID, codeHash []byte) error
	// RedeemAuthCode consumes a code once. A second presentation revokes
	// the grant the first one issued and returns ErrTokenReused; an unknown
	// or expired code is ErrInvalidToken.
	RedeemAuthCode(ctx context.Context, codeHash []byte) (*AuthRequest, error)

	// CreateGrant opens a grant, with its first refresh token when
	// refreshHash is set; for an auth request it is recorded there, so a
	// reused code can revoke it. A user's grant needs an active user.
	CreateGrant(ctx context.Context, g *Grant, authRequestID *uuid.UUID, refreshHash []byte, refreshExpires time.Time) error
	// FindGrantByRefreshToken returns the live grant of an unused refresh
	// token. A used one revokes its whole grant (the family) and returns
	// ErrTokenReused; anything else is ErrInvalidToken.
	FindGrantByRefreshToken(ctx context.Context, hash []byte) (*Grant, error)
	// FindGrant returns a live grant, or ErrInvalidToken.
	FindGrant(ctx context.Context, sessionID uuid.UUID) (*Grant, error)
	// RevokeGrant revokes a grant of the client.
	RevokeGrant(ctx context.Context, clientID, sessionID uuid.UUID) error

	// HasConsent reports whether the user consented to exactly this
	// client and scope set (or a superset).
	HasConsent(ctx context.Context, userID, clientID uuid.UUID, scopes []string) (bool, error)
	SaveConsent(ctx context.Context, userID, clientID uuid.UUID, scopes []string) error
	FindConsents(ctx context.Context, userID uuid.UUID) ([]*Consent, error)
	// WithdrawConsent forgets the user's consents to the client (every
	// client when clientID is empty) and revokes its grants for the user.
	WithdrawConsent(ctx context.Context, userID uuid.UUID, clientID string) error
}
