package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// edKey returns a fixed Ed25519 key pair named by seed.
func edKey(seed byte) (ed25519.PrivateKey, ed25519.PublicKey) {
	priv := ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+seed%26)), ed25519.SeedSize)))
	return priv, priv.Public().(ed25519.PublicKey)
}

func TestThumbprintRFC8037(t *testing.T) {
	// RFC 8037 Appendix A.2 and A.3: the Ed25519 public key and its
	// RFC 7638 thumbprint.
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Thumbprint(ed25519.PublicKey(x)), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("Thumbprint = %q, want %q", got, want)
	}
}

func TestTokensEd25519(t *testing.T) {
	priv, pub := edKey(1)
	cfg := testTokenConfig()
	cfg.Key = nil
	cfg.PrivateKey = priv
	tokens := NewTokens(cfg)

	raw, userID, sessionID := issue(t, tokens, Access, time.Now())
	header, _ := segments(t, raw)
	if header["alg"] != "EdDSA" || header["kid"] != Thumbprint(pub) || header["typ"] != "at+jwt" {
		t.Errorf("header = %v, want alg EdDSA, kid %s, typ at+jwt", header, Thumbprint(pub))
	}
	got, err := tokens.Verify(Access, raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.UserID != userID || got.SessionID != sessionID {
		t.Errorf("Verify = user %s session %s, want %s %s", got.UserID, got.SessionID, userID, sessionID)
	}
	if _, err := tokens.Verify(Refresh, raw); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(Refresh, access token) error = %v, want ErrInvalidToken", err)
	}

	keys := tokens.PublicKeys()
	if len(keys) != 1 {
		t.Fatalf("PublicKeys = %+v, want one key", keys)
	}
	want := JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: Thumbprint(pub), Alg: "EdDSA", Use: "sig"}
	if keys[0] != want {
		t.Errorf("PublicKeys[0] = %+v, want %+v", keys[0], want)
	}
	for _, k := range keys {
		if strings.Contains(k.X, base64.RawURLEncoding.EncodeToString(priv.Seed())) {
			t.Errorf("published key carries the private seed")
		}
	}
}

func TestTokensHMACPublishesNoKeys(t *testing.T) {
	cfg := testTokenConfig()
	cfg.PreviousKeys = [][]byte{otherKey}
	if keys := NewTokens(cfg).PublicKeys(); len(keys) != 0 {
		t.Fatalf("PublicKeys = %+v, want none for HMAC keys (they are secret)", keys)
	}
}

func TestTokensRotation(t *testing.T) {
	now := time.Now()
	oldPriv, oldPub := edKey(2)
	newPriv, newPub := edKey(3)

	withKey := func(key []byte) TokenConfig {
		c := testTokenConfig()
		c.Key = key
		return c
	}
	withPriv := func(priv ed25519.PrivateKey) TokenConfig {
		c := testTokenConfig()
		c.Key = nil
		c.PrivateKey = priv
		return c
	}

	tests := []struct {
		name   string
		before TokenConfig // issues the token
		after  TokenConfig // verifies it after the rotation
		valid  bool
	}{
		{"HMAC to HMAC, old key kept", withKey(otherKey),
			func() TokenConfig { c := withKey(testKey); c.PreviousKeys = [][]byte{otherKey}; return c }(), true},
		{"HMAC to HMAC, old key dropped", withKey(otherKey), withKey(testKey), false},
		{"HMAC to Ed25519, old key kept", withKey(otherKey),
			func() TokenConfig { c := withPriv(newPriv); c.PreviousKeys = [][]byte{otherKey}; return c }(), true},
		{"HMAC to Ed25519, old key dropped", withKey(otherKey), withPriv(newPriv), false},
		{"Ed25519 to Ed25519, old key kept", withPriv(oldPriv),
			func() TokenConfig {
				c := withPriv(newPriv)
				c.PreviousPublicKeys = []ed25519.PublicKey{oldPub}
				return c
			}(), true},
		{"Ed25519 to Ed25519, old key dropped", withPriv(oldPriv), withPriv(newPriv), false},
		{"Ed25519 to HMAC, old key kept", withPriv(oldPriv),
			func() TokenConfig {
				c := withKey(testKey)
				c.PreviousPublicKeys = []ed25519.PublicKey{oldPub}
				return c
			}(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, userID, _ := issue(t, NewTokens(tt.before), Refresh, now)
			got, err := NewTokens(tt.after).Verify(Refresh, raw)
			if tt.valid {
				if err != nil {
					t.Fatalf("Verify after rotation = %v, want valid", err)
				}
				if got.UserID != userID {
					t.Fatalf("UserID = %s, want %s", got.UserID, userID)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify after rotation error = %v, want ErrInvalidToken", err)
			}
		})
	}

	t.Run("new tokens use the new key", func(t *testing.T) {
		c := withPriv(newPriv)
		c.PreviousKeys = [][]byte{otherKey}
		c.PreviousPublicKeys = []ed25519.PublicKey{oldPub}
		raw, _, _ := issue(t, NewTokens(c), Access, now)
		header, _ := segments(t, raw)
		if header["kid"] != Thumbprint(newPub) || header["alg"] != "EdDSA" {
			t.Fatalf("header = %v, want kid %s, alg EdDSA", header, Thumbprint(newPub))
		}
		if _, err := NewTokens(withPriv(oldPriv)).Verify(Access, raw); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("old key verifies a token of the new key: error = %v", err)
		}
	})
}

// TestTokensAlgorithmConfusion: each key verifies only its own algorithm, so
// a public key cannot be used as an HMAC secret, nor an HMAC kid for EdDSA.
func TestTokensAlgorithmConfusion(t *testing.T) {
	now := time.Now()
	priv, pub := edKey(4)
	strangerPriv, strangerPub := edKey(5)
	cfg := testTokenConfig()
	cfg.Key = nil
	cfg.PrivateKey = priv
	cfg.PreviousKeys = [][]byte{otherKey} // both HS256 and EdDSA are in play
	tokens := NewTokens(cfg)
	edKid, hsKid := Thumbprint(pub), KeyID(otherKey)

	// Controls: each key with its own algorithm verifies.
	if _, err := tokens.Verify(Access, forge(t, jwt.SigningMethodHS256, otherKey, "at+jwt", hsKid, validClaims(now))); err != nil {
		t.Fatalf("HS256 token of the previous key: %v", err)
	}
	if _, err := tokens.Verify(Access, forgeEd(t, priv, edKid, validClaims(now))); err != nil {
		t.Fatalf("EdDSA token of the current key: %v", err)
	}

	pemLike := "-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString(pub) + "\n-----END PUBLIC KEY-----\n"
	tests := []struct {
		name string
		raw  string
	}{
		{"HS256 keyed with the public key, Ed kid", forge(t, jwt.SigningMethodHS256, pub, "at+jwt", edKid, validClaims(now))},
		{"HS256 keyed with the published x, Ed kid",
			forge(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(pub)), "at+jwt", edKid, validClaims(now))},
		{"HS256 keyed with a PEM of the public key, Ed kid", forge(t, jwt.SigningMethodHS256, []byte(pemLike), "at+jwt", edKid, validClaims(now))},
		{"HS256 keyed with the public key, HMAC kid", forge(t, jwt.SigningMethodHS256, pub, "at+jwt", hsKid, validClaims(now))},
		{"EdDSA under the HMAC kid", forgeEd(t, priv, hsKid, validClaims(now))},
		{"EdDSA of a stranger under our kid", forgeEd(t, strangerPriv, edKid, validClaims(now))},
		{"EdDSA of a stranger under its own kid", forgeEd(t, strangerPriv, Thumbprint(strangerPub), validClaims(now))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tokens.Verify(Access, tt.raw); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", got, err)
			}
		})
	}
}

func forgeEd(t testing.TB, priv ed25519.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["typ"] = "at+jwt"
	tok.Header["kid"] = kid
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}
