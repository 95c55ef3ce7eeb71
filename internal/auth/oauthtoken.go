package auth

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// OAuth access tokens and ID tokens are signed by the authorization server
// (zitadel/oidc) with the RSA key of the ring, RS256, which OpenID Connect
// requires every provider to support. Their public key is published in the
// same JWKS as ours; Tokens verifies the access tokens for the resource side.

// OAuthKey is the RSA key OAuth tokens are signed with, and its kid (the
// RFC 7638 thumbprint of its public key).
type OAuthKey struct {
	ID  string
	Key *rsa.PrivateKey
}

// oauthKeys is the OAuth part of the ring, worked out once.
type oauthKeys struct {
	signing *OAuthKey
	public  []OAuthPublicKey
	header  string // the JOSE header of the signer, base64url, with its dot
}

func (t *Tokens) oauth() *oauthKeys {
	t.oauthKeysOnce.Do(func() {
		if t.cfg.RSAKey == nil {
			return
		}
		k := &OAuthKey{ID: RSAThumbprint(&t.cfg.RSAKey.PublicKey), Key: t.cfg.RSAKey}
		t.oauthKeys.signing = k
		t.oauthKeys.public = []OAuthPublicKey{{ID: k.ID, Key: &k.Key.PublicKey}}
		for _, p := range t.cfg.PreviousRSAKeys {
			t.oauthKeys.public = append(t.oauthKeys.public, OAuthPublicKey{ID: RSAThumbprint(p), Key: p})
		}
		t.oauthKeys.header = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"`+k.ID+`","typ":"JWT"}`)) + "."
	})
	return &t.oauthKeys
}

// OAuthKey returns the key OAuth tokens are signed with; nil without one.
func (t *Tokens) OAuthKey() *OAuthKey { return t.oauth().signing }

// Audience is the aud of every access token, ours and OAuth ones: this API.
func (t *Tokens) Audience() string { return t.cfg.Audience }

// RSAThumbprint is the RFC 7638 JWK thumbprint of an RSA public key.
func RSAThumbprint(pub *rsa.PublicKey) string {
	e, n := rsaJWK(pub)
	sum := sha256.Sum256([]byte(`{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func rsaJWK(pub *rsa.PublicKey) (e, n string) {
	return base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		base64.RawURLEncoding.EncodeToString(pub.N.Bytes())
}

// OAuthPublicKey is a public key that verifies OAuth tokens: the current
// signing key's, or a previous one's.
type OAuthPublicKey struct {
	ID  string
	Key *rsa.PublicKey
}

// OAuthPublicKeys returns the keys OAuth tokens are verified with, the
// signing key's first; none without a signing key.
func (t *Tokens) OAuthPublicKeys() []OAuthPublicKey { return t.oauth().public }

func (t *Tokens) oauthJWKs() []JWK {
	out := []JWK{}
	for _, k := range t.OAuthPublicKeys() {
		e, n := rsaJWK(k.Key)
		out = append(out, JWK{Kty: "RSA", N: n, E: e, Kid: k.ID, Alg: "RS256", Use: "sig"})
	}
	return out
}

// LooksLikeOAuth reports whether raw starts with the JOSE header the
// authorization server signs with (alg RS256, our kid, typ JWT, as go-jose
// writes it), so a resource check can try VerifyOAuth first and skip a
// parse that cannot succeed. Anything else goes the long way: this only
// orders the checks, it decides nothing.
func (t *Tokens) LooksLikeOAuth(raw string) bool {
	h := t.oauth().header
	return h != "" && strings.HasPrefix(raw, h)
}

// OAuthToken is a verified OAuth access token (RFC 9068).
type OAuthToken struct {
	// Grant is the session the token's grant is; its revocation kills the token.
	Grant     uuid.UUID
	UserID    uuid.UUID // zero for a client acting for itself
	ClientID  string
	Scopes    []string
	Issuer    string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// OAuthTokenID is the jti of an OAuth access token of grant: the grant's
// id and a random part, so a resource server finds the grant without a
// lookup and every token is still unique.
func OAuthTokenID(grant uuid.UUID) string { return grant.String() + "." + uuid.NewString() }

// ParseOAuthTokenID returns the grant named in a jti made by OAuthTokenID.
func ParseOAuthTokenID(jti string) (uuid.UUID, bool) {
	g, rest, ok := strings.Cut(jti, ".")
	if !ok || len(g) != 36 || rest == "" {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(g)
	return id, err == nil
}

type oauthClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	// Present only in ID tokens, which share the key: one is never
	// accepted as an access token.
	Nonce  string `json:"nonce"`
	AZP    string `json:"azp"`
	AtHash string `json:"at_hash"`
}

// VerifyOAuth checks an OAuth access token: RS256 under the ring's RSA
// key, typ JWT or at+jwt, our audience, an issuer issuerOK accepts, exp,
// and the claims of an access token (client_id, a jti naming its grant),
// none of an ID token. Verified tokens are remembered until they expire,
// as our own are.
func (t *Tokens) VerifyOAuth(raw string, issuerOK func(string) bool) (*OAuthToken, error) {
	if t.OAuthKey() == nil || !compact(raw) {
		return nil, ErrInvalidToken
	}
	now := t.now()
	if tok, ok := t.oauthSeen.get(raw, now); ok {
		if !issuerOK(tok.Issuer) {
			return nil, ErrInvalidToken
		}
		return tok, nil
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithAudience(t.cfg.Audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(Leeway), jwt.WithTimeFunc(t.now),
		jwt.WithStrictDecoding())
	var c oauthClaims
	tok, err := parser.ParseWithClaims(raw, &c, func(tok *jwt.Token) (any, error) {
		typ, _ := tok.Header["typ"].(string)
		if typ != "JWT" && typ != string(Access) {
			return nil, ErrInvalidToken
		}
		kid, _ := tok.Header["kid"].(string)
		for _, pk := range t.OAuthPublicKeys() {
			if pk.ID == kid {
				return pk.Key, nil
			}
		}
		return nil, ErrInvalidToken
	})
	if errors.Is(err, jwt.ErrTokenExpired) && errors.Is(err, jwt.ErrTokenInvalidClaims) && !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return nil, ErrExpiredToken
	}
	if err != nil || !tok.Valid || c.ClientID == "" || c.Nonce != "" || c.AZP != "" || c.AtHash != "" ||
		c.IssuedAt == nil || !issuerOK(c.Issuer) {
		return nil, ErrInvalidToken
	}
	grant, ok := ParseOAuthTokenID(c.ID)
	if !ok {
		return nil, ErrInvalidToken
	}
	out := &OAuthToken{Grant: grant, ClientID: c.ClientID, Scopes: strings.Fields(c.Scope), Issuer: c.Issuer,
		IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time}
	if c.Subject != c.ClientID {
		if out.UserID, err = uuid.Parse(c.Subject); err != nil {
			return nil, ErrInvalidToken
		}
	}
	t.oauthSeen.put(raw, out)
	return out, nil
}
