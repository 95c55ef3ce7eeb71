package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acme/taskmanager/internal/auth"
)

func writeKeys(t testing.TB) (privPath, pubPath string, pub ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	privPath = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pder, _ := x509.MarshalPKIXPublicKey(pub)
	pubPath = filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return privPath, pubPath, pub
}

func tokenHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEd25519SigningAndRotation: with JWT_PRIVATE_KEY_FILE tokens are
// EdDSA-signed and the key is published; after a rotation the old key
// still verifies until its tokens expire, and only while it is listed.
func TestEd25519SigningAndRotation(t *testing.T) {
	oldPriv, oldPub, oldKey := writeKeys(t)
	e := newEnv(t, map[string]string{"JWT_PRIVATE_KEY_FILE": oldPriv, "JWT_SIGNING_KEY": ""})
	u := e.newUser()
	if h := tokenHeader(t, u.access); h["alg"] != "EdDSA" || h["kid"] != auth.Thumbprint(oldKey) || h["typ"] != "at+jwt" {
		t.Fatalf("token header = %v", h)
	}
	jwks := decodeAs[struct{ Keys []auth.JWK }](e.do(req{method: "GET", path: "/.well-known/jwks.json"}).status(http.StatusOK))
	jwks.Keys = withoutOAuthKey(jwks.Keys)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kid != auth.Thumbprint(oldKey) || jwks.Keys[0].X != base64.RawURLEncoding.EncodeToString(oldKey) {
		t.Fatalf("jwks = %+v", jwks)
	}

	newPriv, _, _ := writeKeys(t)
	rotated := newEnvOn(t, e.db, e.dsn, map[string]string{"JWT_PRIVATE_KEY_FILE": newPriv, "JWT_PREVIOUS_PUBLIC_KEY_FILES": oldPub, "JWT_SIGNING_KEY": ""})
	rotated.do(req{method: "GET", path: "/api/me/", auth: u.bearer()}).status(http.StatusOK)
	jwks = decodeAs[struct{ Keys []auth.JWK }](rotated.do(req{method: "GET", path: "/.well-known/jwks.json"}))
	if len(withoutOAuthKey(jwks.Keys)) != 2 {
		t.Fatalf("after rotation the JWKS must list both keys, got %d", len(jwks.Keys))
	}
	retired := newEnvOn(t, e.db, e.dsn, map[string]string{"JWT_PRIVATE_KEY_FILE": newPriv, "JWT_SIGNING_KEY": ""})
	retired.do(req{method: "GET", path: "/api/me/", auth: u.bearer()}).errorCode(http.StatusUnauthorized, "invalid_token")
}

// TestHMACRotation: a previous HS256 key keeps its tokens valid.
func TestHMACRotation(t *testing.T) {
	e := newEnv(t, nil) // signs with the default test key
	u := e.newUser()
	next := newEnvOn(t, e.db, e.dsn, map[string]string{"JWT_SIGNING_KEY": strings.Repeat("n", 64), "JWT_PREVIOUS_SIGNING_KEYS": strings.Repeat("k", 64)})
	next.do(req{method: "GET", path: "/api/me/", auth: u.bearer()}).status(http.StatusOK)
	alone := newEnvOn(t, e.db, e.dsn, map[string]string{"JWT_SIGNING_KEY": strings.Repeat("n", 64)})
	alone.do(req{method: "GET", path: "/api/me/", auth: u.bearer()}).errorCode(http.StatusUnauthorized, "invalid_token")
	// HMAC keys are secret: nothing to publish but the OAuth signing key.
	jwks := decodeAs[struct{ Keys []auth.JWK }](e.do(req{method: "GET", path: "/.well-known/jwks.json"}).status(http.StatusOK))
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "RSA" || jwks.Keys[0].Alg != "RS256" {
		t.Fatalf("jwks with HMAC = %+v, want the OAuth RSA key alone", jwks)
	}
}

// withoutOAuthKey drops the OAuth RSA key, which every JWKS lists.
func withoutOAuthKey(keys []auth.JWK) []auth.JWK {
	return slices.DeleteFunc(keys, func(k auth.JWK) bool { return k.Kty == "RSA" })
}

func TestSSLRedirect(t *testing.T) {
	e := newEnv(t, map[string]string{"SECURE_SSL_REDIRECT": "true", "TRUSTED_PROXIES": "10.97.0.1"})
	r := e.do(req{method: "POST", path: "/api/tasks/?x=1", body: map[string]any{"title": "x"}, headers: map[string]string{"Host": "api.example.com"}})
	if r.Code != http.StatusPermanentRedirect || r.Header().Get("Location") != "https://api.example.com/api/tasks/?x=1" {
		t.Fatalf("plain HTTP: %d Location %q, want 308 to https", r.Code, r.Header().Get("Location"))
	}
	e.do(req{method: "GET", path: "/healthz"}).status(http.StatusOK)
	e.do(req{method: "GET", path: "/api/tasks/", ip: "10.97.0.1", headers: map[string]string{"X-Forwarded-Proto": "https"}}).
		errorCode(http.StatusUnauthorized, "not_authenticated")
	if got := e.do(req{method: "GET", path: "/api/tasks/", headers: map[string]string{"X-Forwarded-Proto": "https"}}).Code; got != http.StatusPermanentRedirect {
		t.Fatalf("X-Forwarded-Proto from an untrusted peer: status %d, want 308", got)
	}
}
