package task

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Authentication schemes, as named in access logs.
const (
	SchemeBearer = "bearer"
	SchemeAPIKey = "api_key"
	SchemeOAuth  = "oauth" // an OAuth access token, issued to a client
)

// Identity is the authenticated caller of a request.
type Identity struct {
	UserID    uuid.UUID
	SessionID uuid.UUID // zero for API keys
	Scheme    string
	Scopes    []string  // nil means every scope (a user's own token)
	KeyID     uuid.UUID // the API key used; zero for tokens
	// ClientID is the OAuth client an OAuth access token was issued to.
	// With a zero UserID the client acts for itself (client credentials).
	ClientID string
	// AuthTime and AMR say when and how the user signed in (bearer tokens
	// only): a second factor at sign-in counts for step-up a while.
	AuthTime time.Time
	AMR      []string
}

// HasScope reports whether the identity may act within scope.
func (id *Identity) HasScope(scope string) bool {
	return id.Scopes == nil || slices.Contains(id.Scopes, scope)
}

type identityKey struct{}

// NewContextWithIdentity returns a copy of ctx carrying id.
func NewContextWithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFromContext returns the caller, or nil for an anonymous request.
func IdentityFromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}
