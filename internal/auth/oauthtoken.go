package auth

import (
	"crypto"
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
// (zitadel/oidc) with keys of the ring. ID tokens are always RS256 under
// the RSA key, which OpenID Connect requires every provider to support and
// is the algorithm a client gets when it registered none. Access tokens
// are EdDSA under our own Ed25519 key when there is one
// (JWT_PRIVATE_KEY_FILE), else RS256 too: only resource servers and
// introspection read them. Every public key is in the one JWKS;
// VerifyOAuth checks the access tokens for the resource side.

// OAuthKey is a key OAuth tokens are signed with, its kid (the RFC 7638
// thumbprint of its public key) and the one algorithm it signs with.
type OAuthKey struct {
	ID  string
	Alg string        // RS256 for an *rsa.PrivateKey, EdDSA for an ed25519.PrivateKey
	Key crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
}

// OAuthPublicKey is a public key that verifies OAuth tokens: a current
// signing key's, or a previous one's, bound to its one algorithm.
type OAuthPublicKey struct {
	ID  string
	Alg string
	Key crypto.PublicKey // *rsa.PublicKey or ed25519.PublicKey
}

// The algorithms OAuth tokens are signed with, as JOSE names them.
const (
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
)

// oauthKeys is the OAuth part of the ring, worked out once.
type oauthKeys struct {
	id      *OAuthKey // signs ID tokens
	access  *OAuthKey // signs access tokens
	public  []OAuthPublicKey
	headers []string // the JOSE headers the signers write, base64url, with their dot
	parser  *jwt.Parser
}

func (t *Tokens) oauth() *oauthKeys {
	t.oauthKeysOnce.Do(func() {
		k := &t.oauthKeys
		if t.cfg.RSAKey == nil {
			return
		}
		k.id = &OAuthKey{ID: RSAThumbprint(&t.cfg.RSAKey.PublicKey), Alg: AlgRS256, Key: t.cfg.RSAKey}
		k.access = k.id
		k.public = []OAuthPublicKey{{ID: k.id.ID, Alg: AlgRS256, Key: &t.cfg.RSAKey.PublicKey}}
		for _, p := range t.cfg.PreviousRSAKeys {
			k.public = append(k.public, OAuthPublicKey{ID: RSAThumbprint(p), Alg: AlgRS256, Key: p})
		}
		if t.cfg.PrivateKey != nil {
			k.access = &OAuthKey{ID: t.kid, Alg: AlgEdDSA, Key: t.cfg.PrivateKey}
			k.public = append(k.public, OAuthPublicKey{ID: t.kid, Alg: AlgEdDSA, Key: t.cfg.PrivateKey.Public()})
		}
		for _, p := range t.cfg.PreviousPublicKeys {
			k.public = append(k.public, OAuthPublicKey{ID: Thumbprint(p), Alg: AlgEdDSA, Key: p})
		}
		// An access token signed RS256 before an Ed25519 key was configured
		// is still recognised as one, until it expires.
		k.headers = []string{joseHeader(k.access)}
		if k.access != k.id {
			k.headers = append(k.headers, joseHeader(k.id))
		}
		k.parser = jwt.NewParser(jwt.WithValidMethods(t.OAuthAlgorithms()), jwt.WithAudience(t.cfg.Audience),
			jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(Leeway), jwt.WithTimeFunc(t.now),
			jwt.WithStrictDecoding())
	})
	return &t.oauthKeys
}

// joseHeader is the JOSE header go-jose writes for a token k signs (keys
// in order, typ JWT), base64url, with its dot.
func joseHeader(k *OAuthKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"`+k.Alg+`","kid":"`+k.ID+`","typ":"JWT"}`)) + "."
}

// OAuthKey returns the key ID tokens are signed with (RS256); nil without
// one, and then there are no OAuth tokens at all.
func (t *Tokens) OAuthKey() *OAuthKey { return t.oauth().id }

// OAuthAccessKey returns the key OAuth access tokens are signed with: our
// Ed25519 key when we have one, else the RSA key; nil without an RSA key.
func (t *Tokens) OAuthAccessKey() *OAuthKey { return t.oauth().access }

// OAuthAlgorithms returns the algorithms OAuth tokens may be signed with.
func (t *Tokens) OAuthAlgorithms() []string {
	if t.cfg.RSAKey == nil {
		return nil
	}
	if t.cfg.PrivateKey != nil || len(t.cfg.PreviousPublicKeys) > 0 {
		return []string{AlgRS256, AlgEdDSA}
	}
	return []string{AlgRS256}
}

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

// OAuthPublicKeys returns the keys OAuth tokens are verified with, the
// signing keys' first (RSA, then Ed25519); none without an RSA key.
func (t *Tokens) OAuthPublicKeys() []OAuthPublicKey { return t.oauth().public }

// oauthJWKs are the RSA keys of the JWKS; the Ed25519 ones are listed
// with the ring's (PublicKeys), once.
func (t *Tokens) oauthJWKs() []JWK {
	out := []JWK{}
	for _, k := range t.OAuthPublicKeys() {
		if pub, ok := k.Key.(*rsa.PublicKey); ok {
			e, n := rsaJWK(pub)
			out = append(out, JWK{Kty: "RSA", N: n, E: e, Kid: k.ID, Alg: AlgRS256, Use: "sig"})
		}
	}
	return out
}

// LooksLikeOAuth reports whether raw starts with a JOSE header the
// authorization server signs with (its alg, its kid, typ JWT, as go-jose
// writes it), so a resource check can try VerifyOAuth first and skip a
// parse that cannot succeed. Anything else goes the long way: this only
// orders the checks, it decides nothing.
func (t *Tokens) LooksLikeOAuth(raw string) bool {
	for _, h := range t.oauth().headers {
		if strings.HasPrefix(raw, h) {
			return true
		}
	}
	return false
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

// VerifyOAuth checks an OAuth access token: signed by an OAuth key of the
// ring with that key's algorithm (RS256 or EdDSA), typ JWT or at+jwt, our
// audience, an issuer issuerOK accepts, exp, and the claims of an access
// token (client_id, a jti naming its grant), none of an ID token.
// Verified tokens are remembered until they expire, as our own are.
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
	var c oauthClaims
	tok, err := t.oauth().parser.ParseWithClaims(raw, &c, func(tok *jwt.Token) (any, error) {
		typ, _ := tok.Header["typ"].(string)
		if typ != "JWT" && typ != string(Access) {
			return nil, ErrInvalidToken
		}
		// The kid picks the key and the key its algorithm: a header naming
		// another algorithm than its key's is refused, whatever it says.
		kid, _ := tok.Header["kid"].(string)
		for _, pk := range t.OAuthPublicKeys() {
			if pk.ID == kid && pk.Alg == tok.Method.Alg() {
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
