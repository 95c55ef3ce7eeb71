package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var testOAuthRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// oauthTokens is a ring with the OAuth RSA key and, with ed, our Ed25519 key.
func oauthTokens(ed bool) *Tokens {
	cfg := testTokenConfig()
	cfg.RSAKey = testOAuthRSAKey()
	if ed {
		cfg.Key = nil
		cfg.PrivateKey, _ = edKey(3)
	}
	return NewTokens(cfg)
}

func oauthClaimsNow() map[string]any {
	now := time.Now()
	return map[string]any{"iss": testIssuer, "sub": uuid.NewString(), "aud": []string{testAudience},
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": OAuthTokenID(uuid.New()),
		"client_id": "importer", "scope": "tasks:read"}
}

// joseSign signs claims as the authorization server does (op.SignerFromKey:
// go-jose, typ JWT, the key's kid), with alg.
func joseSign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: &jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func jwtSign(t *testing.T, m jwt.SigningMethod, key any, kid string, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, jwt.MapClaims(claims))
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func issuerIsTest(iss string) bool { return iss == testIssuer }

func TestOAuthKeysWithAnEd25519Key(t *testing.T) {
	tokens := oauthTokens(true)
	edPriv, edPub := edKey(3)
	rsaKey := testOAuthRSAKey()
	if k := tokens.OAuthAccessKey(); k.Alg != AlgEdDSA || k.ID != Thumbprint(edPub) {
		t.Fatalf("access tokens are signed with %s %s, want EdDSA by our key %s", k.Alg, k.ID, Thumbprint(edPub))
	}
	if k := tokens.OAuthKey(); k.Alg != AlgRS256 || k.ID != RSAThumbprint(&rsaKey.PublicKey) {
		t.Fatalf("ID tokens are signed with %s %s, want RS256 by the RSA key", k.Alg, k.ID)
	}
	// One JWKS: the RSA key and our Ed25519 key, once each.
	jwks := tokens.PublicKeys()
	if len(jwks) != 2 || jwks[0].Alg != AlgRS256 || jwks[1].Alg != AlgEdDSA || jwks[1].Kid != Thumbprint(edPub) {
		t.Fatalf("PublicKeys = %+v, want the RSA key and the Ed25519 key", jwks)
	}

	edTok := joseSign(t, jose.EdDSA, edPriv, Thumbprint(edPub), oauthClaimsNow())
	rsTok := joseSign(t, jose.RS256, rsaKey, RSAThumbprint(&rsaKey.PublicKey), oauthClaimsNow())
	for name, raw := range map[string]string{"EdDSA": edTok, "RS256": rsTok} {
		if !tokens.LooksLikeOAuth(raw) {
			t.Errorf("%s: LooksLikeOAuth = false for the header go-jose writes", name)
		}
		if tok, err := tokens.VerifyOAuth(raw, issuerIsTest); err != nil || tok.ClientID != "importer" {
			t.Errorf("%s: VerifyOAuth = %+v, %v; want the token", name, tok, err)
		}
	}
	own, _, _ := issue(t, tokens, Access, time.Now())
	if tokens.LooksLikeOAuth(own) {
		t.Error("our own access token looks like an OAuth one")
	}
	if _, err := tokens.VerifyOAuth(own, issuerIsTest); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("VerifyOAuth(our own access token, same key) = %v, want ErrInvalidToken", err)
	}
	if _, err := tokens.Verify(Access, edTok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(an OAuth access token) = %v, want ErrInvalidToken", err)
	}
}

// TestVerifyOAuthPinsTheAlgorithmToTheKey: the kid picks the key and the
// key its algorithm; a header that names another one is refused, whatever
// key material the forger used.
func TestVerifyOAuthPinsTheAlgorithmToTheKey(t *testing.T) {
	tokens := oauthTokens(true)
	edPriv, edPub := edKey(3)
	edKid := Thumbprint(edPub)
	rsaKey := testOAuthRSAKey()
	rsaKid := RSAThumbprint(&rsaKey.PublicKey)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	otherEd, _ := edKey(9)
	forged := map[string]string{
		"RS256 under the Ed25519 kid":      joseSign(t, jose.RS256, rsaKey, edKid, oauthClaimsNow()),
		"EdDSA under the RSA kid":          joseSign(t, jose.EdDSA, edPriv, rsaKid, oauthClaimsNow()),
		"HS256 keyed with the Ed25519 key": jwtSign(t, jwt.SigningMethodHS256, []byte(edPub), edKid, oauthClaimsNow()),
		"HS256 keyed with the RSA key":     jwtSign(t, jwt.SigningMethodHS256, rsaDER, rsaKid, oauthClaimsNow()),
		"EdDSA by another key, our kid":    joseSign(t, jose.EdDSA, otherEd, edKid, oauthClaimsNow()),
		"PS256 under the RSA kid":          joseSign(t, jose.PS256, rsaKey, rsaKid, oauthClaimsNow()),
		"alg none":                         jwtSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, edKid, oauthClaimsNow()),
	}
	for name, raw := range forged {
		if _, err := tokens.VerifyOAuth(raw, issuerIsTest); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: VerifyOAuth = %v, want ErrInvalidToken", name, err)
		}
	}
	// Without an Ed25519 key of ours, an EdDSA token is no OAuth token.
	if _, err := oauthTokens(false).VerifyOAuth(joseSign(t, jose.EdDSA, edPriv, edKid, oauthClaimsNow()), issuerIsTest); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("EdDSA token on a ring without the key: %v, want ErrInvalidToken", err)
	}
}

// TestOAuthKeysAfterAnEd25519Rotation: a previous Ed25519 key still
// verifies the OAuth access tokens it signed, as it does ours.
func TestOAuthKeysAfterAnEd25519Rotation(t *testing.T) {
	oldPriv, oldPub := edKey(4)
	cfg := testTokenConfig()
	cfg.Key = nil
	cfg.RSAKey = testOAuthRSAKey()
	cfg.PrivateKey, _ = edKey(5)
	cfg.PreviousPublicKeys = append(cfg.PreviousPublicKeys, oldPub)
	raw := joseSign(t, jose.EdDSA, oldPriv, Thumbprint(oldPub), oauthClaimsNow())
	if _, err := NewTokens(cfg).VerifyOAuth(raw, issuerIsTest); err != nil {
		t.Fatalf("token of the previous Ed25519 key: %v", err)
	}
	cfg.PreviousPublicKeys = nil
	if _, err := NewTokens(cfg).VerifyOAuth(raw, issuerIsTest); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token of a retired Ed25519 key: %v, want ErrInvalidToken", err)
	}
}
