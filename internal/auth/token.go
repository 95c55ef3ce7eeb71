package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Kind tells access tokens and refresh tokens apart. Each has its own JWT
// "typ" header, and neither is accepted in the other's place (RFC 8725 3.11).
type Kind string

// The token kinds and their typ headers (RFC 9068 names the access one).
const (
	Access  Kind = "at+jwt"
	Refresh Kind = "rt+jwt"
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 10 * time.Second

// ErrInvalidToken is every verification failure. ErrExpiredToken is the one
// failure worth telling a client apart (it should refresh): it is returned
// only for a token whose signature and claims were otherwise good, and it
// is also an ErrInvalidToken.
var (
	ErrInvalidToken = errors.New("auth: invalid token")
	ErrExpiredToken = fmt.Errorf("%w: expired", ErrInvalidToken)
	// ErrSessionEnded: the session passed its maximum age; no token is issued.
	ErrSessionEnded = errors.New("auth: session ended")
)

// Claims are the claims of both token kinds.
type Claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	// AuthTime is when the user signed in (OpenID Connect's auth_time); a
	// refresh keeps it, so a session's age is known from any of its tokens.
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	// AMR names how the user signed in (RFC 8176: pwd, otp, mfa, hwk...);
	// a refresh keeps it, as it keeps auth_time.
	AMR []string `json:"amr,omitempty"`
}

// Token is a verified token's identity.
type Token struct {
	UserID    uuid.UUID
	SessionID uuid.UUID
	ID        string
	IssuedAt  time.Time
	AuthTime  time.Time
	ExpiresAt time.Time
	AMR       []string // read only: shared by the copies the cache hands out
}

// TokenConfig configures a Tokens. With PrivateKey set, tokens are signed
// with Ed25519 (and the public keys published as a JWKS); otherwise with
// HS256 and Key. The Previous* keys only verify: they keep tokens signed
// before a key rotation valid until they expire.
type TokenConfig struct {
	Key                []byte
	PrivateKey         ed25519.PrivateKey
	PreviousKeys       [][]byte
	PreviousPublicKeys []ed25519.PublicKey
	Issuer             string
	Audience           string
	AccessTTL          time.Duration
	RefreshTTL         time.Duration
	// SessionMaxAge caps every token of a session at its sign-in time plus
	// this, however often it is refreshed; zero means no cap.
	SessionMaxAge time.Duration
	// Now is the clock verification reads; nil means time.Now.
	Now func() time.Time
	// RSAKey signs OAuth access tokens and ID tokens (RS256); its public
	// key joins the JWKS. Nil: no OAuth tokens are accepted.
	RSAKey *rsa.PrivateKey
	// PreviousRSAKeys only verify OAuth tokens, after a rotation.
	PreviousRSAKeys []*rsa.PublicKey
}

// ringKey is one key of the ring, bound to its one algorithm.
type ringKey struct {
	method jwt.SigningMethod
	verify any // []byte or ed25519.PublicKey
	public ed25519.PublicKey
}

// Tokens issues and verifies JWTs with the issuer, audience and algorithm
// pinned. Keys live in a ring indexed by kid; a token's kid only ever
// selects from it, and each key accepts only its own algorithm.
type Tokens struct {
	cfg     TokenConfig
	kid     string
	sign    any
	method  jwt.SigningMethod
	ring    map[string]ringKey
	parsers map[Kind]*jwt.Parser
	now     func() time.Time
	seen    *verified[Token]
	// oauthSeen remembers verified OAuth access tokens; oauthKeys are the
	// keys that verify them and the header their signer writes, worked
	// out once (oauthtoken.go).
	oauthSeen     *verified[OAuthToken]
	oauthKeysOnce sync.Once
	oauthKeys     oauthKeys
}

// verifiedMax bounds the access tokens remembered as verified: a few MiB
// at most, and more than the distinct tokens one instance sees in an
// access-token lifetime at our scale.
const verifiedMax = 4096

// NewTokens returns a Tokens for cfg.
func NewTokens(cfg TokenConfig) *Tokens {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	t := &Tokens{cfg: cfg, ring: map[string]ringKey{}, parsers: map[Kind]*jwt.Parser{}, now: now,
		seen:      newVerified(func(t *Token) time.Time { return t.ExpiresAt }),
		oauthSeen: newVerified(func(t *OAuthToken) time.Time { return t.ExpiresAt })}
	addHMAC := func(k []byte) string {
		kid := KeyID(k)
		t.ring[kid] = ringKey{method: jwt.SigningMethodHS256, verify: k}
		return kid
	}
	addEd := func(pub ed25519.PublicKey) string {
		kid := Thumbprint(pub)
		t.ring[kid] = ringKey{method: jwt.SigningMethodEdDSA, verify: pub, public: pub}
		return kid
	}
	if cfg.PrivateKey != nil {
		t.kid, t.sign, t.method = addEd(cfg.PrivateKey.Public().(ed25519.PublicKey)), cfg.PrivateKey, jwt.SigningMethodEdDSA
	} else {
		t.kid, t.sign, t.method = addHMAC(cfg.Key), cfg.Key, jwt.SigningMethodHS256
	}
	for _, k := range cfg.PreviousKeys {
		addHMAC(k)
	}
	for _, k := range cfg.PreviousPublicKeys {
		addEd(k)
	}
	algs := []string{}
	for _, k := range t.ring {
		algs = append(algs, k.method.Alg())
	}
	for _, k := range []Kind{Access, Refresh} {
		t.parsers[k] = jwt.NewParser(
			jwt.WithValidMethods(algs),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(Leeway),
			jwt.WithTimeFunc(now),
			// Canonical base64 only: a token has one spelling, so the hash a
			// refresh token is stored under cannot be dodged by re-encoding it.
			jwt.WithStrictDecoding(),
		)
	}
	return t
}

// KeyID names an HMAC key without revealing it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("taskmanager kid:"), key...))
	return hex.EncodeToString(sum[:8])
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key.
func Thumbprint(pub ed25519.PublicKey) string {
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// JWK is a public key as /.well-known/jwks.json lists it.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	N   string `json:"n,omitempty"` // RSA
	E   string `json:"e,omitempty"` // RSA
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// PublicKeys returns the ring's public keys: the OAuth RSA key, and the
// Ed25519 ones when our tokens are signed asymmetrically.
func (t *Tokens) PublicKeys() []JWK {
	out := t.oauthJWKs()
	for kid, k := range t.ring {
		if k.public != nil {
			out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.public),
				Kid: kid, Alg: "EdDSA", Use: "sig"})
		}
	}
	return out
}

// TTL returns the lifetime of tokens of kind k.
func (t *Tokens) TTL(k Kind) time.Duration {
	if k == Refresh {
		return t.cfg.RefreshTTL
	}
	return t.cfg.AccessTTL
}

// Issue signs a token of kind k for the user's session, which began at
// authTime. It never outlives the session's maximum age: ErrSessionEnded
// when that has passed.
func (t *Tokens) Issue(k Kind, userID, sessionID uuid.UUID, authTime, now time.Time) (string, time.Time, error) {
	return t.IssueAMR(k, userID, sessionID, authTime, now, nil)
}

// IssueAMR is Issue for a sign-in made with the methods amr (RFC 8176).
func (t *Tokens) IssueAMR(k Kind, userID, sessionID uuid.UUID, authTime, now time.Time, amr []string) (string, time.Time, error) {
	exp := now.Add(t.TTL(k)).Truncate(time.Second)
	if t.cfg.SessionMaxAge > 0 {
		end := authTime.Add(t.cfg.SessionMaxAge).Truncate(time.Second)
		if !end.After(now) {
			return "", time.Time{}, ErrSessionEnded
		}
		if end.Before(exp) {
			exp = end
		}
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   userID.String(),
			Audience:  jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		SessionID: sessionID.String(),
		AuthTime:  jwt.NewNumericDate(authTime),
		AMR:       amr,
	}
	tok := jwt.NewWithClaims(t.method, claims)
	tok.Header["typ"] = string(k)
	tok.Header["kid"] = t.kid
	s, err := tok.SignedString(t.sign)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token of kind k: signature, algorithm, typ, issuer,
// audience, expiry, and that it names a user and a session.
func (t *Tokens) Verify(k Kind, raw string) (*Token, error) {
	if k == Access {
		if tok, ok := t.seen.get(raw, t.now()); ok {
			return tok, nil
		}
	}
	parser, ok := t.parsers[k]
	if !ok || !compact(raw) {
		return nil, ErrInvalidToken
	}
	var claims Claims
	tok, err := parser.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		if typ, _ := tok.Header["typ"].(string); typ != string(k) {
			return nil, ErrInvalidToken
		}
		kid, _ := tok.Header["kid"].(string)
		key, ok := t.ring[kid]
		if !ok || tok.Method.Alg() != key.method.Alg() {
			return nil, ErrInvalidToken
		}
		return key.verify, nil
	})
	// golang-jwt checks the signature before the claims, so "expired" is
	// said only of a token we did sign.
	if errors.Is(err, jwt.ErrTokenExpired) && errors.Is(err, jwt.ErrTokenInvalidClaims) && !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return nil, ErrExpiredToken
	}
	if err != nil || !tok.Valid {
		return nil, ErrInvalidToken
	}
	uid, err1 := uuid.Parse(claims.Subject)
	sid, err2 := uuid.Parse(claims.SessionID)
	if err1 != nil || err2 != nil || claims.ID == "" || claims.IssuedAt == nil {
		return nil, ErrInvalidToken
	}
	out := &Token{UserID: uid, SessionID: sid, ID: claims.ID, IssuedAt: claims.IssuedAt.Time,
		AuthTime: claims.IssuedAt.Time, ExpiresAt: claims.ExpiresAt.Time, AMR: claims.AMR}
	if claims.AuthTime != nil {
		out.AuthTime = claims.AuthTime.Time
	}
	if k == Access {
		t.seen.put(raw, out)
	}
	return out, nil
}

// verified remembers the access tokens that passed every check of Verify
// (or VerifyOAuth), until they expire. A client sends the same access token with every
// request for minutes, and parsing and checking it again costs more than
// the rest of a list request. Only a token we signed and that was valid
// enters, so a forged or garbage one is still parsed (and refused) every
// time; revocation is not decided here but by the caller on each request.
// A valid token stays valid until exp plus the leeway: its signature, typ,
// issuer, audience and iat do not change with time.
type verified[T any] struct {
	mu        sync.RWMutex
	m         map[string]*T
	max       int
	expiresAt func(*T) time.Time
}

func newVerified[T any](expiresAt func(*T) time.Time) *verified[T] {
	return &verified[T]{m: make(map[string]*T), max: verifiedMax, expiresAt: expiresAt}
}

// get returns a copy of the remembered token, so no caller can change
// what another one reads.
func (v *verified[T]) get(raw string, now time.Time) (*T, bool) {
	v.mu.RLock()
	tok, ok := v.m[raw]
	v.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if !now.Before(v.expiresAt(tok).Add(Leeway)) {
		v.mu.Lock()
		delete(v.m, raw)
		v.mu.Unlock()
		return nil, false // parsed again, to answer "expired"
	}
	out := *tok
	return &out, true
}

func (v *verified[T]) put(raw string, tok *T) {
	stored := *tok
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= v.max {
		for k := range v.m { // an arbitrary entry makes room
			delete(v.m, k)
			break
		}
	}
	v.m[raw] = &stored
}

// compact reports whether raw is spelled as a JWS compact serialization:
// base64url characters and dots, nothing the decoder would skip.
func compact(raw string) bool {
	if len(raw) == 0 || len(raw) > 8192 {
		return false
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
