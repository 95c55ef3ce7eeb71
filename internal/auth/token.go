package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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

// ErrInvalidToken is every verification failure: callers tell a client no more.
var ErrInvalidToken = errors.New("auth: invalid token")

// Claims are the claims of both token kinds.
type Claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
}

// Token is a verified token's identity.
type Token struct {
	UserID    uuid.UUID
	SessionID uuid.UUID
	ID        string
	ExpiresAt time.Time
}

// TokenConfig configures a Tokens.
type TokenConfig struct {
	Key        []byte
	Issuer     string
	Audience   string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
}

// Tokens issues and verifies HS256 JWTs with the issuer, audience and
// algorithm pinned. Keys live in a ring indexed by kid; the header's kid
// only ever selects from it.
type Tokens struct {
	cfg     TokenConfig
	kid     string
	ring    map[string][]byte
	parsers map[Kind]*jwt.Parser
}

// NewTokens returns a Tokens signing with cfg.Key.
func NewTokens(cfg TokenConfig) *Tokens {
	kid := KeyID(cfg.Key)
	t := &Tokens{cfg: cfg, kid: kid, ring: map[string][]byte{kid: cfg.Key}, parsers: map[Kind]*jwt.Parser{}}
	for _, k := range []Kind{Access, Refresh} {
		t.parsers[k] = jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(Leeway),
		)
	}
	return t
}

// KeyID names a key without revealing it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("taskmanager kid:"), key...))
	return hex.EncodeToString(sum[:8])
}

// TTL returns the lifetime of tokens of kind k.
func (t *Tokens) TTL(k Kind) time.Duration {
	if k == Refresh {
		return t.cfg.RefreshTTL
	}
	return t.cfg.AccessTTL
}

// Issue signs a token of kind k for the user's session.
func (t *Tokens) Issue(k Kind, userID, sessionID uuid.UUID, now time.Time) (string, time.Time, error) {
	exp := now.Add(t.TTL(k)).Truncate(time.Second)
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
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["typ"] = string(k)
	tok.Header["kid"] = t.kid
	s, err := tok.SignedString(t.ring[t.kid])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token of kind k: signature, algorithm, typ, issuer,
// audience, expiry, and that it names a user and a session.
func (t *Tokens) Verify(k Kind, raw string) (*Token, error) {
	var claims Claims
	tok, err := t.parsers[k].ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		if typ, _ := tok.Header["typ"].(string); typ != string(k) {
			return nil, ErrInvalidToken
		}
		kid, _ := tok.Header["kid"].(string)
		key, ok := t.ring[kid]
		if !ok {
			return nil, ErrInvalidToken
		}
		return key, nil
	})
	if err != nil || !tok.Valid {
		return nil, ErrInvalidToken
	}
	uid, err1 := uuid.Parse(claims.Subject)
	sid, err2 := uuid.Parse(claims.SessionID)
	if err1 != nil || err2 != nil || claims.ID == "" {
		return nil, ErrInvalidToken
	}
	return &Token{UserID: uid, SessionID: sid, ID: claims.ID, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// HashToken is the SHA-256 under which a refresh token is stored.
func HashToken(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}
