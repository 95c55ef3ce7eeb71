package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

// The OAuth 2.1 / OpenID Connect authorization server is zitadel/oidc's
// op.Provider on top of oauthStorage, which keeps everything in our store.
// What the library leaves to us is added here and in oauthpages.go: PKCE
// S256 for every client, exact redirect URIs (and RFC 8252 loopback ports),
// iss in the authorization response, refresh-family revocation on reuse,
// hashed client secrets, our CORS and our key ring.

// Paths of the authorization server (API.md: OAuth 2.0 and OpenID Connect).
const (
	oauthAuthorizePath  = "/oauth/authorize"
	oauthTokenPath      = "/oauth/token"
	oauthIntrospectPath = "/oauth/introspect"
	oauthRevokePath     = "/oauth/revoke"
	oauthUserinfoPath   = "/oauth/userinfo"
	oauthLoginPath      = "/oauth/login"
	oauthConsentPath    = "/oauth/consent"
	jwksPath            = "/.well-known/jwks.json"
)

type oauthServer struct {
	s        *Server
	provider *op.Provider
	storage  *oauthStorage
}

func newOAuthServer(s *Server) *oauthServer {
	st := &oauthStorage{s: s}
	var cryptoKey [32]byte
	// The library makes a code by encrypting the auth request id with this
	// key; we never decrypt one (a code is found by its stored hash, on any
	// instance), so a random key per process only makes codes unguessable.
	_, _ = rand.Read(cryptoKey[:])
	codes := op.NewAES256GCMCrypto(cryptoKey, "")
	p, err := op.NewProvider(&op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       task.OAuthScopes,
	}, st, func(bool) (op.IssuerFromRequest, error) {
		return func(r *http.Request) string { return s.oauthIssuer(r) }, nil
	},
		op.WithAllowInsecure(),  // the issuer follows the request (PUBLIC_URL, else the allowed Host), as every URL we write
		op.WithCORSOptions(nil), // ours (s.cors) runs in front of every route
		op.WithCustomAuthEndpoint(op.NewEndpoint(oauthAuthorizePath)),
		op.WithCustomTokenEndpoint(op.NewEndpoint(oauthTokenPath)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(oauthIntrospectPath)),
		op.WithCustomRevocationEndpoint(op.NewEndpoint(oauthRevokePath)),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint(oauthUserinfoPath)),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint("/oauth/end_session")),
		op.WithCustomKeysEndpoint(op.NewEndpoint(jwksPath)),
		// Nothing was ever encrypted with the key of another process, so the
		// library's fallback to AES-CFB is left out; refreshTokens lets
		// introspection answer for our refresh tokens.
		op.WithCrypto(op.NewCompositeCrypto(codes, []op.Decrypter{refreshTokens{}, codes})),
		// Unless told, the library's access-token verifier (introspection,
		// userinfo, revocation) takes RS256, ES256 and PS256, not EdDSA.
		op.WithAccessTokenVerifierOpts(op.WithSupportedAccessTokenSigningAlgorithms(s.tokens.OAuthAlgorithms()...)),
	)
	if err != nil {
		panic("httpapi: oauth provider: " + err.Error()) // only a programming error gets here
	}
	return &oauthServer{s: s, provider: p, storage: st}
}

// oauthIssuer is the issuer for a request: our base URL, as every
// absolute URL we write (PUBLIC_URL, else the allowed Host).
func (s *Server) oauthIssuer(r *http.Request) string {
	return strings.TrimSuffix(s.absoluteURL(r, "", "", ""), "/")
}

// issuerOK reports whether iss is an issuer this server may have written:
// PUBLIC_URL's, or an allowed host's. Only our key signs OAuth tokens, so
// this is defence in depth.
func (s *Server) issuerOK(iss string) bool {
	if p := s.cfg.PublicURL; p != nil {
		return iss == strings.TrimSuffix(p.String(), "/")
	}
	scheme, host, ok := strings.Cut(iss, "://")
	return ok && (scheme == "http" || scheme == "https") && !strings.ContainsAny(host, "/?#@") && s.hostAllowed(host)
}

// oauthOn serves h while there is an OAuth signing key; without one
// (production without OAUTH_RSA_KEY_FILE, which config warns of) the
// authorization server is off and its routes are 404.
func (s *Server) oauthOn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.tokens.OAuthKey() == nil {
			s.error(w, r, task.ErrNotFound)
			return
		}
		h(w, r)
	}
}

// serveProvider hands a request to the library. Its router is separate from
// ours, so it gets a request without our routing state.
func (o *oauthServer) serveProvider(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, o.s.cfg.MaxBodyBytes)
	ctx := withSigning(context.WithValue(r.Context(), chi.RouteCtxKey, (*chi.Context)(nil)))
	o.provider.ServeHTTP(w, r.WithContext(ctx))
}

// oauthClient is a registered client as the library sees it. Every client
// is a "web" application to the library, which then matches redirect URIs
// exactly; the loopback rule of RFC 8252 is ours (redirectAllowed), and a
// redirect URI it accepted is added for this request only.
type oauthClient struct {
	c        *task.OAuthClient
	redirect string // accepted by redirectAllowed for this request
	idTTL    time.Duration
}

func (c *oauthClient) GetID() string                    { return c.c.ClientID }
func (c *oauthClient) PostLogoutRedirectURIs() []string { return nil }
func (c *oauthClient) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeWeb
}
func (c *oauthClient) RedirectURIs() []string {
	if c.redirect != "" {
		return append(slices.Clone(c.c.RedirectURIs), c.redirect)
	}
	return c.c.RedirectURIs
}

func (c *oauthClient) AuthMethod() oidc.AuthMethod {
	if c.c.Confidential() {
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodNone
}
func (c *oauthClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *oauthClient) GrantTypes() []oidc.GrantType {
	out := []oidc.GrantType{}
	for _, g := range c.c.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}
func (c *oauthClient) LoginURL(id string) string           { return oauthLoginPath + "?id=" + id }
func (c *oauthClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *oauthClient) IDTokenLifetime() time.Duration      { return c.idTTL }
func (c *oauthClient) DevMode() bool                       { return false }
func (c *oauthClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *oauthClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *oauthClient) IsScopeAllowed(scope string) bool     { return slices.Contains(c.c.Scopes, scope) }
func (c *oauthClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *oauthClient) ClockSkew() time.Duration             { return 0 }

// authRequest is a stored authorization request as the library sees it.
type authRequest struct {
	a        *task.AuthRequest
	audience string
	grant    uuid.UUID // set once tokens are issued for it
}

func (a *authRequest) GetID() string          { return a.a.ID.String() }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return amrOr(a.a.AMR) }
func (a *authRequest) GetAudience() []string  { return []string{a.audience} }
func (a *authRequest) GetAuthTime() time.Time { return a.a.AuthTime }
func (a *authRequest) GetClientID() string    { return a.a.Client }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.a.CodeChallenge, Method: oidc.CodeChallengeMethodS256}
}
func (a *authRequest) GetNonce() string                   { return a.a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseTypeCode }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.a.ResponseMode) }
func (a *authRequest) GetScopes() []string                { return a.a.Scopes }
func (a *authRequest) GetState() string                   { return a.a.State }
func (a *authRequest) GetSubject() string {
	if a.a.UserID == nil {
		return ""
	}
	return a.a.UserID.String()
}
func (a *authRequest) Done() bool { return a.a.Done }

// grantRequest is a refresh of a grant, or a client acting for itself.
type grantRequest struct {
	g        *task.Grant
	audience string
	scopes   []string
	refresh  string // the refresh token presented, for rotation
}

func (g *grantRequest) GetAMR() []string       { return amrOr(g.g.AMR) }
func (g *grantRequest) GetAudience() []string  { return []string{g.audience} }
func (g *grantRequest) GetAuthTime() time.Time { return g.g.AuthTime }
func (g *grantRequest) GetClientID() string    { return g.g.Client }
func (g *grantRequest) GetScopes() []string    { return g.scopes }
func (g *grantRequest) GetSubject() string {
	if g.g.UserID == nil {
		return g.g.Client // RFC 9068 2.2: a client acting for itself is the subject
	}
	return g.g.UserID.String()
}
func (g *grantRequest) SetCurrentScopes(scopes []string) { g.scopes = scopes }

// signingKey is a key of the ring as the library signs with it.
type signingKey struct{ k *auth.OAuthKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.k.Alg)
}
func (k signingKey) Key() any   { return k.k.Key }
func (k signingKey) ID() string { return k.k.ID }

type publicKey struct{ k auth.OAuthPublicKey }

func (k publicKey) ID() string                         { return k.k.ID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.k.Alg) }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k.Key }

// The library asks one Storage method, SigningKey, for the key of both an
// access token (op.CreateJWT) and an ID token (op.CreateIDToken), which we
// sign with different keys. Of the two, only CreateJWT asks
// GetPrivateClaimsFromRequest, just before SigningKey: that call marks the
// request's signing, and SigningKey takes the mark. Without a mark (an ID
// token, or a request not from serveProvider) the key is the RSA one,
// which every OAuth client can verify.
type signing struct{ access bool }

type signingCtxKey struct{}

// withSigning gives the request a place for the mark.
func withSigning(ctx context.Context) context.Context {
	return context.WithValue(ctx, signingCtxKey{}, &signing{})
}

func markAccessTokenSigning(ctx context.Context) {
	if m, ok := ctx.Value(signingCtxKey{}).(*signing); ok {
		m.access = true
	}
}

func takeAccessTokenSigning(ctx context.Context) bool {
	m, ok := ctx.Value(signingCtxKey{}).(*signing)
	if !ok || !m.access {
		return false
	}
	m.access = false
	return true
}

// oauthStorage implements op.Storage (and client credentials) on our store.
type oauthStorage struct{ s *Server }

var (
	_ op.Storage                        = (*oauthStorage)(nil)
	_ op.ClientCredentialsStorage       = (*oauthStorage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*oauthStorage)(nil)
)

// redirectKey carries the redirect URI authorize accepted into the
// library's client lookup.
type redirectKey struct{}

func (st *oauthStorage) audience() string { return st.s.tokens.Audience() }

// storeError turns a store failure into what the library answers: an
// unavailable database is a temporary server error, anything else a
// server error whose cause is logged by oauthErrors, never sent.
func storeError(err error) error {
	if err == nil {
		return nil
	}
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return err
	}
	return oidc.ErrServerError().WithParent(err).WithDescription("Internal server error.")
}

func (st *oauthStorage) client(ctx context.Context, clientID string) (*task.OAuthClient, error) {
	if clientID == "" || len(clientID) > 100 || strings.IndexFunc(clientID, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return nil, oidc.ErrInvalidClient().WithDescription("Unknown client.")
	}
	c, err := st.s.deps.OAuth.FindClientByClientID(ctx, clientID)
	if task.ErrorCode(err) == task.ENOTFOUND {
		return nil, oidc.ErrInvalidClient().WithDescription("Unknown client.")
	}
	return c, storeError(err)
}

func (st *oauthStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c, err := st.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	redirect, _ := ctx.Value(redirectKey{}).(string)
	return &oauthClient{c: c, redirect: redirect, idTTL: st.s.tokens.TTL(auth.Access)}, nil
}

// AuthorizeClientIDSecret checks a confidential client's secret against its hash.
func (st *oauthStorage) AuthorizeClientIDSecret(ctx context.Context, clientID, secret string) error {
	c, err := st.client(ctx, clientID)
	if err != nil {
		return err
	}
	if !c.Confidential() || subtle.ConstantTimeCompare(auth.HashSecret(secret), c.SecretHash) != 1 {
		return oidc.ErrInvalidClient().WithDescription("Client authentication failed.")
	}
	return nil
}

func (st *oauthStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := st.client(ctx, req.ClientID)
	if err != nil {
		return nil, err
	}
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method=S256 is required.")
	}
	a := &task.AuthRequest{ID: uuid.New(), ClientID: c.ID, Client: c.ClientID, RedirectURI: req.RedirectURI,
		State: req.State, Nonce: req.Nonce, Scopes: req.Scopes, ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge}
	if err := st.s.deps.OAuth.CreateAuthRequest(ctx, a); err != nil {
		return nil, storeError(err)
	}
	return &authRequest{a: a, audience: st.audience()}, nil
}

func (st *oauthStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("Unknown or expired authorization request.")
	}
	a, err := st.s.deps.OAuth.FindAuthRequest(ctx, uid)
	if task.ErrorCode(err) == task.ENOTFOUND {
		return nil, oidc.ErrInvalidRequest().WithDescription("Unknown or expired authorization request.")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return &authRequest{a: a, audience: st.audience()}, nil
}

// AuthRequestByCode redeems a code, once. A code presented again revokes
// what its first redemption issued.
func (st *oauthStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	a, err := st.s.deps.OAuth.RedeemAuthCode(ctx, auth.HashSecret(code))
	if errors.Is(err, task.ErrTokenReused) {
		st.s.securityEventCtx(ctx, "token_reuse_detected", "kind", "authorization_code")
		return nil, oidc.ErrInvalidGrant().WithDescription("The authorization code was already used; what it issued is revoked.")
	}
	if task.ErrorCode(err) == task.EINVALIDTOKEN {
		return nil, oidc.ErrInvalidGrant().WithDescription("The authorization code is invalid or expired.")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return &authRequest{a: a, audience: st.audience()}, nil
}

func (st *oauthStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	uid, err := uuid.Parse(id)
	if err != nil {
		return oidc.ErrInvalidRequest()
	}
	if err := st.s.deps.OAuth.SaveAuthCode(ctx, uid, auth.HashSecret(code)); task.ErrorCode(err) == task.ENOTFOUND {
		return oidc.ErrInvalidRequest().WithDescription("Unknown or expired authorization request.")
	} else if err != nil {
		return storeError(err)
	}
	return nil
}

// DeleteAuthRequest keeps the request: its row remembers that the code
// was used (and what it issued) until it is swept, long after expiry.
func (st *oauthStorage) DeleteAuthRequest(context.Context, string) error { return nil }

func (st *oauthStorage) accessExpiry() time.Time {
	return st.s.now().Add(st.s.tokens.TTL(auth.Access)).Truncate(time.Second)
}

// openGrant opens the grant (a session bound to the client) that a code
// or client credentials issue, with its first refresh token when asked.
func (st *oauthStorage) openGrant(ctx context.Context, req op.TokenRequest, refresh string) (uuid.UUID, error) {
	now := st.s.now()
	var g *task.Grant
	var authID *uuid.UUID
	switch r := req.(type) {
	case *authRequest:
		g = &task.Grant{ClientID: r.a.ClientID, UserID: r.a.UserID, Scopes: r.a.Scopes, AuthTime: r.a.AuthTime, AMR: r.a.AMR}
		authID = &r.a.ID
	case *grantRequest:
		g = &task.Grant{ClientID: r.g.ClientID, Scopes: r.scopes, AuthTime: now}
	default:
		return uuid.Nil, oidc.ErrServerError()
	}
	g.ExpiresAt = st.accessExpiry()
	var hash []byte
	var refreshExp time.Time
	if refresh != "" {
		hash, refreshExp = auth.HashSecret(refresh), now.Add(st.s.tokens.TTL(auth.Refresh))
		g.ExpiresAt = refreshExp
	}
	err := st.s.deps.OAuth.CreateGrant(ctx, g, authID, hash, refreshExp)
	switch {
	case errors.Is(err, task.ErrTokenReused):
		st.s.securityEventCtx(ctx, "token_reuse_detected", "kind", "authorization_code")
		return uuid.Nil, oidc.ErrInvalidGrant().WithDescription("The authorization code was already used; what it issued is revoked.")
	case task.ErrorCode(err) == task.EINVALIDTOKEN:
		return uuid.Nil, oidc.ErrInvalidGrant().WithDescription("The user's account is not active.")
	case err != nil:
		return uuid.Nil, storeError(err)
	}
	if r, ok := req.(*authRequest); ok {
		r.grant = g.SessionID
	}
	if r, ok := req.(*grantRequest); ok {
		r.g.SessionID = g.SessionID
	}
	return g.SessionID, nil
}

func (st *oauthStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	sid, err := st.openGrant(ctx, req, "")
	if err != nil {
		return "", time.Time{}, err
	}
	return auth.OAuthTokenID(sid), st.accessExpiry(), nil
}

// newRefreshToken is an opaque refresh token: 256 random bits, stored
// only as a hash.
func newRefreshToken() string { return refreshPrefix + rand.Text() + rand.Text() }

const refreshPrefix = "tmr_"

// refreshShaped reports whether token may be one of our refresh tokens,
// before anything is looked up.
func refreshShaped(token string) bool {
	return strings.HasPrefix(token, refreshPrefix) && len(token) <= 200
}

// refreshTokens is the library's decrypter of opaque tokens for our
// refresh tokens: the library turns a token presented to introspection,
// userinfo or revocation into "token id:subject" with it before it tries
// the token as a JWT. A refresh token's id is the token itself (its grant
// is found by its hash); the subject is left to the grant.
// SetIntrospectionFromToken answers for it; SetUserinfoFromToken refuses
// it, as it refuses anything but an access token's id; RevokeToken finds
// its grant either way.
type refreshTokens struct{}

func (refreshTokens) Decrypt(token string) (string, error) {
	if !refreshShaped(token) || strings.Contains(token, ":") {
		return "", task.ErrInvalidToken
	}
	return token + ":", nil
}

// CreateAccessAndRefreshTokens issues a grant's first refresh token, or
// rotates the one presented: of concurrent rotations one wins, and a used
// token presented again kills the family (TokenRequestByRefreshToken).
func (st *oauthStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	refresh := newRefreshToken()
	if current == "" {
		sid, err := st.openGrant(ctx, req, refresh)
		if err != nil {
			return "", "", time.Time{}, err
		}
		return auth.OAuthTokenID(sid), refresh, st.accessExpiry(), nil
	}
	gr, ok := req.(*grantRequest)
	if !ok {
		return "", "", time.Time{}, oidc.ErrServerError()
	}
	exp := st.s.now().Add(st.s.tokens.TTL(auth.Refresh))
	_, err := st.s.deps.Sessions.RotateRefreshToken(ctx, auth.HashSecret(current), auth.HashSecret(refresh), exp)
	switch {
	case errors.Is(err, task.ErrTokenReused):
		st.s.securityEventCtx(ctx, "token_reuse_detected", "session_id", gr.g.SessionID.String(), "client_id", gr.g.Client)
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("The refresh token was already used; its grant is revoked.")
	case task.ErrorCode(err) == task.EINVALIDTOKEN:
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("The refresh token is invalid, expired or revoked.")
	case err != nil:
		return "", "", time.Time{}, storeError(err)
	}
	return auth.OAuthTokenID(gr.g.SessionID), refresh, st.accessExpiry(), nil
}

func (st *oauthStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	if !refreshShaped(token) {
		return nil, oidc.ErrInvalidGrant().WithDescription("The refresh token is invalid, expired or revoked.")
	}
	g, err := st.s.deps.OAuth.FindGrantByRefreshToken(ctx, auth.HashSecret(token))
	if errors.Is(err, task.ErrTokenReused) {
		st.s.securityEventCtx(ctx, "token_reuse_detected", "session_id", g.SessionID.String())
		return nil, oidc.ErrInvalidGrant().WithDescription("The refresh token was already used; its grant is revoked.")
	}
	if task.ErrorCode(err) == task.EINVALIDTOKEN {
		return nil, oidc.ErrInvalidGrant().WithDescription("The refresh token is invalid, expired or revoked.")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return &grantRequest{g: g, audience: st.audience(), scopes: g.Scopes, refresh: token}, nil
}

// TerminateSession ends the user's grants of the client (end_session,
// which is not routed).
func (st *oauthStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return nil
	}
	return storeError(st.s.deps.OAuth.WithdrawConsent(ctx, uid, clientID))
}

// grantOf finds the grant a token names: an access token's id (a jti of
// auth.OAuthTokenID), or a refresh token itself.
func (st *oauthStorage) grantOf(ctx context.Context, tokenOrID string) (*task.Grant, error) {
	if sid, ok := auth.ParseOAuthTokenID(tokenOrID); ok {
		return st.s.deps.OAuth.FindGrant(ctx, sid)
	}
	if refreshShaped(tokenOrID) {
		return st.s.deps.OAuth.FindGrantByRefreshToken(ctx, auth.HashSecret(tokenOrID))
	}
	return nil, task.ErrInvalidToken
}

// RevokeToken revokes the grant of an access or refresh token of the
// calling client (RFC 7009): its access and refresh tokens die at once on
// every instance. Another client's or an unknown token is left alone, and
// the answer is 200 either way.
func (st *oauthStorage) RevokeToken(ctx context.Context, tokenOrID, _, clientID string) *oidc.Error {
	g, err := st.grantOf(ctx, tokenOrID)
	if errors.Is(err, task.ErrTokenReused) {
		return nil // the family is dead already
	}
	if err != nil {
		if task.ErrorCode(err) == task.EINVALIDTOKEN {
			return nil
		}
		return oidc.ErrServerError().WithDescription("Internal server error.")
	}
	if g.Client != clientID {
		return nil
	}
	if err := st.s.deps.OAuth.RevokeGrant(ctx, g.ClientID, g.SessionID); err != nil {
		return oidc.ErrServerError().WithDescription("Internal server error.")
	}
	st.s.securityEventCtx(ctx, "session_revoked", "session_id", g.SessionID.String(), "client_id", clientID, "reason", "oauth_revoke")
	return nil
}

func (st *oauthStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	if !refreshShaped(token) {
		return "", "", op.ErrInvalidRefreshToken
	}
	g, err := st.s.deps.OAuth.FindGrantByRefreshToken(ctx, auth.HashSecret(token))
	if err != nil || g.Client != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	sub := g.Client
	if g.UserID != nil {
		sub = g.UserID.String()
	}
	return sub, token, nil
}

// SigningKey is the key of the token the library signs: an access
// token's (EdDSA when we have an Ed25519 key), or an ID token's (RS256).
func (st *oauthStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k := st.s.tokens.OAuthKey()
	if takeAccessTokenSigning(ctx) {
		k = st.s.tokens.OAuthAccessKey()
	}
	if k == nil {
		return nil, oidc.ErrServerError().WithDescription("Internal server error.")
	}
	return signingKey{k}, nil
}

// SignatureAlgorithms is what discovery lists as
// id_token_signing_alg_values_supported: ID tokens are RS256 only, the
// algorithm OpenID Connect requires and defaults to.
func (st *oauthStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet is what the library verifies OAuth tokens with (introspection,
// userinfo, revocation): the signing keys and the previous ones, each
// bound to its algorithm.
func (st *oauthStorage) KeySet(context.Context) ([]op.Key, error) {
	var out []op.Key
	for _, k := range st.s.tokens.OAuthPublicKeys() {
		out = append(out, publicKey{k})
	}
	return out, nil
}

// setUserinfo fills the claims scopes allow of the user.
func (st *oauthStorage) setUserinfo(ctx context.Context, info *oidc.UserInfo, userID string, scopes []string) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return oidc.ErrInvalidRequest().WithDescription("The token does not act for a user.")
	}
	u, err := st.s.deps.Users.FindUserByID(ctx, uid)
	if task.ErrorCode(err) == task.ENOTFOUND || (err == nil && !u.IsActive) {
		return oidc.ErrInvalidRequest().WithDescription("The token is not active.")
	}
	if err != nil {
		return storeError(err)
	}
	info.Subject = u.ID.String()
	if slices.Contains(scopes, task.ScopeProfile) {
		info.PreferredUsername = u.Username
		info.Name = u.Username
	}
	if slices.Contains(scopes, task.ScopeEmail) && u.Email != "" {
		info.Email = u.Email
		info.EmailVerified = false // we never check addresses
	}
	return nil
}

func (st *oauthStorage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, userID, _ string, scopes []string) error {
	return st.setUserinfo(ctx, info, userID, scopes)
}

// SetUserinfoFromToken answers /oauth/userinfo for a live grant only.
func (st *oauthStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	sid, ok := auth.ParseOAuthTokenID(tokenID)
	if !ok {
		return oidc.ErrInvalidRequest().WithDescription("The token is not active.")
	}
	g, err := st.s.deps.OAuth.FindGrant(ctx, sid)
	if err != nil || g.UserID == nil || !slices.Contains(g.Scopes, task.ScopeOpenID) {
		return oidc.ErrInvalidRequest().WithDescription("The token is not active.")
	}
	return st.setUserinfo(ctx, info, g.UserID.String(), g.Scopes)
}

// SetIntrospectionFromToken answers /oauth/introspect (RFC 7662) for an
// access token's id or a refresh token (refreshTokens): active only for a
// live grant of the calling client; anything else, another client's token
// included, is {"active": false}. It asks the database, so a revocation
// anywhere shows at once.
func (st *oauthStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	if refreshShaped(tokenID) {
		return st.introspectRefresh(ctx, resp, tokenID, clientID)
	}
	sid, ok := auth.ParseOAuthTokenID(tokenID)
	if !ok {
		return task.ErrInvalidToken
	}
	g, err := st.s.deps.OAuth.FindGrant(ctx, sid)
	if err = st.introspected(ctx, resp, g, err, clientID); err != nil {
		return err
	}
	resp.TokenType = oidc.BearerToken
	resp.Audience = []string{st.audience()}
	resp.JWTID = tokenID
	return nil
}

// introspected describes the grant g (found with err) of a token in resp,
// if it is the calling client's.
func (st *oauthStorage) introspected(ctx context.Context, resp *oidc.IntrospectionResponse, g *task.Grant, err error, clientID string) error {
	if err != nil {
		return err
	}
	if g.Client != clientID {
		return task.ErrInvalidToken
	}
	resp.Scope = g.Scopes
	resp.ClientID = g.Client
	st.setSubject(ctx, resp, g)
	return nil
}

// introspectRefresh answers for a refresh token: active while it is
// unused, unexpired and its grant (of the calling client) lives. Looking
// does not use it, so a rotated-away token is inactive, not reuse.
func (st *oauthStorage) introspectRefresh(ctx context.Context, resp *oidc.IntrospectionResponse, token, clientID string) error {
	g, err := st.s.deps.OAuth.FindGrantByUnusedRefreshToken(ctx, auth.HashSecret(token))
	if err = st.introspected(ctx, resp, g, err, clientID); err != nil {
		return err
	}
	resp.TokenType = string(oidc.RefreshTokenType)
	resp.Expiration = oidc.FromTime(g.ExpiresAt)
	return nil
}

// setSubject names who a grant's token acts for: its user, or the client
// acting for itself.
func (st *oauthStorage) setSubject(ctx context.Context, resp *oidc.IntrospectionResponse, g *task.Grant) {
	resp.Subject = g.Client
	if g.UserID != nil {
		resp.Subject = g.UserID.String()
		if u, err := st.s.deps.Users.FindUserByID(ctx, *g.UserID); err == nil {
			resp.Username = u.Username
		}
	}
}

func (st *oauthStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest adds the scope claim of an access token
// (RFC 9068 2.2.3), which the library leaves out. The library asks it
// only for an access token, so it also marks the signing (see signing).
func (st *oauthStorage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	markAccessTokenSigning(ctx)
	return map[string]any{"scope": strings.Join(req.GetScopes(), " ")}, nil
}

func (st *oauthStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("JWT client authentication is not supported.")
}

func (st *oauthStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

func (st *oauthStorage) Health(ctx context.Context) error { return st.s.deps.Ping(ctx) }

// ClientCredentials authenticates a confidential client registered for
// client_credentials.
func (st *oauthStorage) ClientCredentials(ctx context.Context, clientID, secret string) (op.Client, error) {
	if err := st.AuthorizeClientIDSecret(ctx, clientID, secret); err != nil {
		return nil, err
	}
	c, err := st.GetClientByClientID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if !c.(*oauthClient).c.Allows(task.GrantClientCredentials) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("The client is not registered for client_credentials.")
	}
	return c, nil
}

// ClientCredentialsTokenRequest is a client acting for itself, within its
// registered task scopes: no user, so no openid, profile, email or refresh.
func (st *oauthStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, err := st.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if len(scopes) == 0 {
		scopes = slices.DeleteFunc(slices.Clone(c.Scopes), func(s string) bool { return !slices.Contains(task.AllScopes, s) })
	}
	for _, sc := range scopes {
		if !slices.Contains(task.AllScopes, sc) || !slices.Contains(c.Scopes, sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("The client may not ask for scope %s.", sc)
		}
	}
	return &grantRequest{g: &task.Grant{ClientID: c.ID, Client: c.ClientID}, audience: st.audience(), scopes: scopes}, nil
}

// securityEventCtx logs a security event from inside the library's call
// chain, where only the request's context is at hand.
func (s *Server) securityEventCtx(ctx context.Context, event string, args ...any) {
	s.securityEvent((&http.Request{}).WithContext(ctx), event, args...)
}

// identifyOAuth verifies an OAuth access token (RFC 9068) and that its
// grant lives: revocation is read from memory, as for our own tokens.
func (s *Server) identifyOAuth(ctx context.Context, raw string) (*task.Identity, error) {
	tok, err := s.tokens.VerifyOAuth(raw, s.issuerOK)
	if errors.Is(err, auth.ErrExpiredToken) {
		return nil, task.ErrTokenExpired
	}
	if err != nil {
		return nil, task.ErrInvalidToken
	}
	revoked, err := s.deps.Revocations.IsRevoked(ctx, tok.Grant, tok.IssuedAt)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, task.ErrTokenRevoked
	}
	// Only the task scopes mean anything to our routes; never nil, which
	// would mean every scope.
	scopes := make([]string, 0, 2)
	for _, sc := range tok.Scopes {
		if slices.Contains(task.AllScopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return &task.Identity{UserID: tok.UserID, SessionID: tok.Grant, Scheme: task.SchemeOAuth, Scopes: scopes,
		ClientID: tok.ClientID}, nil
}

// amrOr is how a user signed in on the sign-in page: the password alone
// for requests and grants from before amr was recorded.
func amrOr(amr []string) []string {
	if len(amr) == 0 {
		return []string{task.AMRPassword}
	}
	return amr
}
