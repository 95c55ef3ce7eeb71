package task

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
	AMR           []string // how the user signed in (RFC 8176)
	Done          bool     // signed in and consented: a code may be issued
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
	AMR       []string // how the user signed in; nil for a client alone
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
	// BindAuthRequest ties a request to the browser that first shows its
	// sign-in page (the hash of its flow cookie): ErrNotFound for another.
	BindAuthRequest(ctx context.Context, id uuid.UUID, browserHash []byte) error
	// SignInAuthRequest records who signed in, in the browser the request
	// is bound to (ErrNotFound from another).
	SignInAuthRequest(ctx context.Context, id, userID uuid.UUID, authTime time.Time, amr []string, browserHash []byte) error
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
	// FindGrantByUnusedRefreshToken returns the live grant of an unused,
	// unexpired refresh token, with the token's expiry as ExpiresAt, and
	// changes nothing: a used token is ErrInvalidToken here, not reuse
	// (introspecting an old token does not kill its family).
	FindGrantByUnusedRefreshToken(ctx context.Context, hash []byte) (*Grant, error)
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

// RedirectAllowed reports whether uri is one of the client's redirect URIs
// exactly, or (RFC 8252 7.3) a registered loopback one on another port:
// http, the literal 127.0.0.1 or [::1], the same path and query.
func (c *OAuthClient) RedirectAllowed(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	u, ok := LoopbackRedirect(uri)
	if !ok {
		return false
	}
	for _, reg := range c.RedirectURIs {
		if r, ok := LoopbackRedirect(reg); ok && r.Hostname() == u.Hostname() && r.Path == u.Path && r.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

// LoopbackRedirect parses a native app's loopback redirect URI (RFC 8252
// 7.3): http on the literal 127.0.0.1 or [::1] ("localhost" may resolve
// elsewhere, 8.3), any port, no user info or fragment.
func LoopbackRedirect(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, false
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "::1" {
		return nil, false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, false
		}
	}
	return u, true
}

// validRedirectURI: absolute, no fragment or user info, and https, http
// on a loopback address, or a native app's private-use scheme in reverse
// DNS form (RFC 8252 7.1).
func validRedirectURI(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" || u.User != nil || u.Scheme == "" || strings.ContainsAny(raw, " \t\r\n#*") {
		return false
	}
	switch u.Scheme {
	case "https":
		return u.Host != ""
	case "http":
		_, ok := LoopbackRedirect(raw)
		return ok
	default:
		return strings.Contains(u.Scheme, ".") && (u.Opaque != "" || u.Path != "")
	}
}

// CheckOAuthClient checks how a client's settings fit together: redirect
// URIs for (and only for) the code flow, each valid; refresh tokens only
// with the code flow; client credentials only for a confidential client.
// Each field's own rules (names, known grants and scopes) are checked by
// whoever reads them.
func CheckOAuthClient(redirectURIs, grants []string, confidential bool) error {
	fields := map[string][]string{}
	code := slices.Contains(grants, GrantAuthorizationCode)
	switch {
	case code && len(redirectURIs) == 0:
		fields["redirect_uris"] = append(fields["redirect_uris"], "The authorization code grant needs at least one redirect URI.")
	case !code && len(redirectURIs) > 0:
		fields["redirect_uris"] = append(fields["redirect_uris"], "Redirect URIs are only for the authorization code grant.")
	}
	if slices.ContainsFunc(redirectURIs, func(u string) bool { return !validRedirectURI(u) }) {
		fields["redirect_uris"] = append(fields["redirect_uris"],
			"Each redirect URI must be absolute, without a fragment: https, http on 127.0.0.1 or [::1], or an app's own scheme.")
	}
	if slices.Contains(grants, GrantRefreshToken) && !code {
		fields["grant_types"] = append(fields["grant_types"], "refresh_token needs authorization_code.")
	}
	if slices.Contains(grants, GrantClientCredentials) && !confidential {
		fields["grant_types"] = append(fields["grant_types"], "client_credentials is only for confidential clients.")
	}
	if len(fields) > 0 {
		return Invalid(fields)
	}
	return nil
}
