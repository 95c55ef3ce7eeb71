package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// testRSAKey is the OAuth signing key of every test server of this process.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const testRedirect = "http://127.0.0.1:8765/callback"

// oauthEnv is a test server on a real listener, for real OAuth clients.
type oauthEnv struct {
	*testEnv
	base  string
	admin *user
}

func newOAuthEnv(t testing.TB, env map[string]string) *oauthEnv {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	// Every request of a real client comes from 127.0.0.1.
	defaults := map[string]string{"ALLOWED_HOSTS": "127.0.0.1,.example.com", "RATE_LIMIT_ANON": "10000/minute",
		"RATE_LIMIT_LOGIN": "10000/minute", "RATE_LIMIT_TOKEN": "10000/minute", "RATE_LIMIT_REGISTER": "10000/minute"}
	for k, v := range defaults {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	e := newEnv(t, env)
	return e.withListener(t)
}

func (e *testEnv) withListener(t testing.TB) *oauthEnv {
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	o := &oauthEnv{testEnv: e, base: ts.URL}
	o.admin = e.newAdmin()
	return o
}

type registered struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	ID           string `json:"id"`
}

func (o *oauthEnv) register(t testing.TB, body map[string]any) registered {
	t.Helper()
	base := map[string]any{"name": "Task Importer", "redirect_uris": []string{testRedirect},
		"grant_types": []string{"authorization_code", "refresh_token"},
		"scopes":      []string{"tasks:read", "tasks:write", "openid", "profile", "email", "offline_access"}, "confidential": true}
	for k, v := range body {
		base[k] = v
	}
	return decodeAs[registered](o.do(req{method: "POST", path: "/api/admin/oauth/clients/", body: base,
		auth: o.admin.bearer()}).status(http.StatusCreated))
}

func (o *oauthEnv) config(c registered, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: testRedirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: o.base + "/oauth/authorize", TokenURL: o.base + "/oauth/token"}}
}

// browser is a cookie-keeping client that stops at the first redirect
// leaving the server.
func (o *oauthEnv) browser(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(r.URL.String(), o.base) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

var hiddenInput = regexp.MustCompile(`name="(csrf|id|mfa_token)" value="([^"]*)"`)

func formFields(t testing.TB, body string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("csrf") == "" || v.Get("id") == "" {
		t.Fatalf("no form with csrf and id in page: %.300s", body)
	}
	return v
}

func read(t testing.TB, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// signIn drives the sign-in (and, unless remembered, consent) pages from
// authURL and returns the redirect to the client.
func (o *oauthEnv) signIn(t testing.TB, b *http.Client, authURL string, u *user) *url.URL {
	t.Helper()
	r, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page := read(t, r)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("authorize: status %d: %.300s", r.StatusCode, page)
	}
	f := formFields(t, page)
	f.Set("username", u.username)
	f.Set("password", u.password)
	r, err = b.PostForm(o.base+"/oauth/login", f)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode == http.StatusOK {
		page = read(t, r)
		if !strings.Contains(page, `value="allow"`) {
			t.Fatalf("expected the consent page, got %.300s", page)
		}
		f = formFields(t, page)
		f.Set("decision", "allow")
		r, err = b.PostForm(o.base+"/oauth/consent", f)
		if err != nil {
			t.Fatal(err)
		}
	}
	defer r.Body.Close()
	loc, err := r.Location()
	if r.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("after sign-in: status %d, Location %v", r.StatusCode, r.Header.Get("Location"))
	}
	return loc
}

// codeFlow runs the code flow with PKCE for u and returns the token.
func (o *oauthEnv) codeFlow(t testing.TB, conf *oauth2.Config, u *user) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	loc := o.signIn(t, o.browser(t), conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)), u)
	q := loc.Query()
	iss := o.base
	if p := o.cfg.PublicURL; p != nil {
		iss = p.String()
	}
	if q.Get("state") != "st-1" || q.Get("iss") != iss || q.Get("code") == "" {
		t.Fatalf("redirect = %s, want code, state st-1 and iss %s", loc, iss)
	}
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

func (o *oauthEnv) tasksStatus(t testing.TB, access string) int {
	t.Helper()
	rq, _ := http.NewRequest("GET", o.base+"/api/tasks/", nil)
	rq.Header.Set("Authorization", "Bearer "+access)
	r, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}

func (o *oauthEnv) introspect(t testing.TB, c registered, token string) map[string]any {
	t.Helper()
	rq, _ := http.NewRequest("POST", o.base+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	rq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rq.SetBasicAuth(c.ClientID, c.ClientSecret)
	r, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	body := read(t, r)
	var out map[string]any
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("introspect: %d %s", r.StatusCode, body)
	}
	return out
}

func TestOAuthCodeFlowWithPKCE(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c := o.register(t, nil)
	u := o.newUser()
	conf := o.config(c, "tasks:read", "openid", "offline_access")
	tok := o.codeFlow(t, conf, u)
	if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatalf("token = %+v, want refresh and ID tokens", tok)
	}
	if got := o.tasksStatus(t, tok.AccessToken); got != http.StatusOK {
		t.Fatalf("GET /api/tasks/ with the OAuth token: %d", got)
	}
	if got := o.introspect(t, c, tok.AccessToken); got["active"] != true || got["sub"] != u.id {
		t.Fatalf("introspection = %v", got)
	}
	// Refresh rotates; reusing the old refresh token kills the family.
	fresh, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || fresh.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v, %+v", err, fresh)
	}
	if _, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a used refresh token worked again")
	}
	if !strings.Contains(o.logBuf.String(), `"event":"token_reuse_detected"`) {
		t.Error("no token_reuse_detected event")
	}
	if got := o.tasksStatus(t, fresh.AccessToken); got != http.StatusUnauthorized {
		t.Fatalf("access token of a family killed by reuse: %d, want 401", got)
	}
	if got := o.introspect(t, c, fresh.AccessToken); got["active"] != false {
		t.Fatalf("introspection after reuse = %v", got)
	}
}
