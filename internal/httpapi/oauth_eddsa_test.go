package httpapi

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/acme/taskmanager/internal/auth"
)

// newEdOAuthEnv is an authorization server whose ring has an Ed25519 key
// (JWT_PRIVATE_KEY_FILE) besides the OAuth RSA key.
func newEdOAuthEnv(t *testing.T) (*oauthEnv, ed25519.PublicKey) {
	t.Helper()
	priv, _, pub := writeKeys(t)
	return newOAuthEnv(t, map[string]string{"JWT_PRIVATE_KEY_FILE": priv, "JWT_SIGNING_KEY": ""}), pub
}

type discovered struct {
	IDTokenAlgs []string `json:"id_token_signing_alg_values_supported"`
	JWKSURI     string   `json:"jwks_uri"`
}

// TestOAuthEdDSAAccessTokens: with an Ed25519 key in the ring, a real
// client's access tokens are EdDSA under that key (its kid in the JWKS)
// and work on the API and at the library's end points; its ID token is
// what discovery announces and verifies from the JWKS, as a relying party
// does it.
func TestOAuthEdDSAAccessTokens(t *testing.T) {
	o, pub := newEdOAuthEnv(t)
	c := o.register(t, nil)
	u := o.newUser()
	conf := o.config(c, "tasks:read", "openid", "profile", "offline_access")
	tok := o.codeFlow(t, conf, u)

	jwks := decodeAs[struct{ Keys []auth.JWK }](o.do(req{method: "GET", path: "/.well-known/jwks.json"}).status(http.StatusOK))
	listed := func(kid, alg string) bool {
		return slices.ContainsFunc(jwks.Keys, func(k auth.JWK) bool { return k.Kid == kid && k.Alg == alg })
	}
	h := tokenHeader(t, tok.AccessToken)
	if h["alg"] != "EdDSA" || h["kid"] != auth.Thumbprint(pub) || h["typ"] != "JWT" || !listed(auth.Thumbprint(pub), "EdDSA") {
		t.Fatalf("access token header = %v, want EdDSA under our Ed25519 key as the JWKS lists it (%+v)", h, jwks.Keys)
	}
	if got := o.tasksStatus(t, tok.AccessToken); got != http.StatusOK {
		t.Fatalf("GET /api/tasks/ with the EdDSA access token: %d", got)
	}
	if got := o.introspect(t, c, tok.AccessToken); got["active"] != true || got["sub"] != u.id {
		t.Fatalf("introspection of the EdDSA access token = %v", got)
	}
	rq, _ := http.NewRequest("GET", o.base+"/oauth/userinfo", nil)
	rq.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	r, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	if body := read(t, r); r.StatusCode != http.StatusOK {
		t.Fatalf("userinfo with the EdDSA access token: %d %s", r.StatusCode, body)
	}

	// The ID token: the algorithm discovery announces (RS256, which every
	// OpenID client supports), verified against the published JWKS.
	r, err = http.Get(o.base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d discovered
	if err := json.Unmarshal([]byte(read(t, r)), &d); err != nil || d.JWKSURI != o.base+jwksPath {
		t.Fatalf("discovery: %v, %+v", err, d)
	}
	idTok, _ := tok.Extra("id_token").(string)
	ih := tokenHeader(t, idTok)
	if !slices.Equal(d.IDTokenAlgs, []string{"RS256"}) || ih["alg"] != "RS256" || !listed(ih["kid"].(string), "RS256") {
		t.Fatalf("discovery announces %v, ID token header %v, JWKS %+v", d.IDTokenAlgs, ih, jwks.Keys)
	}
	verifier := rp.NewIDTokenVerifier(o.base, c.ClientID, rp.NewRemoteKeySet(http.DefaultClient, d.JWKSURI),
		rp.WithSupportedSigningAlgorithms(d.IDTokenAlgs...))
	claims, err := rp.VerifyTokens[*oidc.IDTokenClaims](t.Context(), tok.AccessToken, idTok, verifier)
	if err != nil || claims.Subject != u.id {
		t.Fatalf("relying-party verification of the ID token (and its at_hash): %v, %+v", err, claims)
	}

	// A refreshed access token is EdDSA too.
	fresh, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if h := tokenHeader(t, fresh.AccessToken); h["alg"] != "EdDSA" || o.tasksStatus(t, fresh.AccessToken) != http.StatusOK {
		t.Fatalf("refreshed access token header %v", h)
	}
	// So is a client's own, by client credentials.
	_, _, own := o.serviceClient(t)
	if h := tokenHeader(t, own.AccessToken); h["alg"] != "EdDSA" {
		t.Fatalf("client credentials access token header %v", h)
	}
}

// TestOAuthForgedEdDSATokensAreRefused: changing a word of a genuine
// EdDSA access token, or re-signing it under another algorithm for the
// same kid, gets 401 from the API and inactive from introspection.
func TestOAuthForgedEdDSATokensAreRefused(t *testing.T) {
	o, pub := newEdOAuthEnv(t)
	c := o.register(t, nil)
	tok := o.codeFlow(t, o.config(c, "tasks:read"), o.newUser())
	parts := strings.Split(tok.AccessToken, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["scope"] = "tasks:read tasks:write"
	wider, _ := json.Marshal(claims)
	kid := auth.Thumbprint(pub)
	resign := func(alg jose.SignatureAlgorithm, key any) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: &jose.JSONWebKey{Key: key, KeyID: kid}},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := jws.CompactSerialize()
		return raw
	}
	header := func(alg string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","kid":"` + kid + `","typ":"JWT"}`))
	}
	forged := map[string]string{
		"wider scope, same signature":     parts[0] + "." + base64.RawURLEncoding.EncodeToString(wider) + "." + parts[2],
		"alg swapped to RS256":            header("RS256") + "." + parts[1] + "." + parts[2],
		"RS256 by the RSA key":            resign(jose.RS256, testRSAKey()),
		"HS256 keyed with the public key": resign(jose.HS256, []byte(pub)),
		"alg none":                        header("none") + "." + parts[1] + ".",
	}
	for name, raw := range forged {
		t.Run(name, func(t *testing.T) {
			o.do(req{method: "GET", path: "/api/tasks/", auth: "Bearer " + raw}).errorCode(http.StatusUnauthorized, "invalid_token")
			if got := o.introspect(t, c, raw); got["active"] != false {
				t.Fatalf("introspection = %v, want inactive", got)
			}
		})
	}
	// The genuine one still works.
	if got := o.tasksStatus(t, tok.AccessToken); got != http.StatusOK {
		t.Fatalf("genuine token: %d", got)
	}
}

// TestOAuthEd25519KeyAddedAndRotated: configuring an Ed25519 key keeps
// the RS256 access tokens issued before working; rotating it keeps the
// EdDSA ones working while the old key is listed, and only then.
func TestOAuthEd25519KeyAddedAndRotated(t *testing.T) {
	env := map[string]string{"PUBLIC_URL": "http://tm.example.com"}
	o := newOAuthEnv(t, env)
	c := o.register(t, nil)
	u := o.newUser()
	rsTok := o.codeFlow(t, o.config(c, "tasks:read"), u)
	if h := tokenHeader(t, rsTok.AccessToken); h["alg"] != "RS256" {
		t.Fatalf("without an Ed25519 key the access token header is %v, want RS256", h)
	}
	oldPriv, oldPub, _ := writeKeys(t)
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"PUBLIC_URL": env["PUBLIC_URL"], "JWT_SIGNING_KEY": "", "ALLOWED_HOSTS": "127.0.0.1,.example.com"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	ed := newEnvOn(t, o.db, o.dsn, with(map[string]string{"JWT_PRIVATE_KEY_FILE": oldPriv})).withListener(t)
	if got := ed.tasksStatus(t, rsTok.AccessToken); got != http.StatusOK {
		t.Fatalf("an RS256 access token after an Ed25519 key was added: %d", got)
	}
	edTok := ed.codeFlow(t, ed.config(c, "tasks:read"), u)
	if h := tokenHeader(t, edTok.AccessToken); h["alg"] != "EdDSA" {
		t.Fatalf("access token header %v, want EdDSA", h)
	}
	newPriv, _, _ := writeKeys(t)
	rotated := newEnvOn(t, o.db, o.dsn, with(map[string]string{"JWT_PRIVATE_KEY_FILE": newPriv,
		"JWT_PREVIOUS_PUBLIC_KEY_FILES": oldPub})).withListener(t)
	if got := rotated.tasksStatus(t, edTok.AccessToken); got != http.StatusOK {
		t.Fatalf("an EdDSA access token of the previous key: %d", got)
	}
	if got := rotated.introspect(t, c, edTok.AccessToken); got["active"] != true {
		t.Fatalf("introspection of an EdDSA access token of the previous key: %v", got)
	}
	retired := newEnvOn(t, o.db, o.dsn, with(map[string]string{"JWT_PRIVATE_KEY_FILE": newPriv})).withListener(t)
	if got := retired.tasksStatus(t, edTok.AccessToken); got != http.StatusUnauthorized {
		t.Fatalf("an EdDSA access token of a retired key: %d, want 401", got)
	}
}
