package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/acme/taskmanager/internal/auth"
)

// get asks the server for path as a browser would, without following redirects.
func (o *oauthEnv) get(t *testing.T, path string) *http.Response {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := c.Get(o.base + path)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r
}

func authorizeQuery(c registered, redirect string, extra ...string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {redirect},
		"scope": {"tasks:read"}, "state": {"st-9"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return "/oauth/authorize?" + q.Encode()
}

const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" // RFC 7636 appendix B

func TestOAuthAuthorizeRefusals(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c := o.register(t, map[string]any{"confidential": false})
	s256 := []string{"code_challenge", challenge, "code_challenge_method", "S256"}
	redirected := []struct {
		name  string
		extra []string
		code  string
	}{
		{"no PKCE", nil, "invalid_request"},
		{"plain PKCE", []string{"code_challenge", challenge, "code_challenge_method", "plain"}, "invalid_request"},
		{"PKCE without method", []string{"code_challenge", challenge}, "invalid_request"},
		{"implicit", append([]string{"response_type", "token"}, s256...), "unsupported_response_type"},
		{"hybrid", append([]string{"response_type", "code id_token"}, s256...), "unsupported_response_type"},
		{"unregistered scope", append([]string{"scope", "tasks:read admin"}, s256...), "invalid_scope"},
		{"no scope", append([]string{"scope", ""}, s256...), "invalid_scope"},
		{"fragment mode", append([]string{"response_mode", "fragment"}, s256...), "invalid_request"},
		{"request object", append([]string{"request", "eyJ.x.y"}, s256...), "request_not_supported"},
	}
	for _, tt := range redirected {
		t.Run(tt.name, func(t *testing.T) {
			r := o.get(t, authorizeQuery(c, testRedirect, tt.extra...))
			loc, err := r.Location()
			if r.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), testRedirect+"?") {
				t.Fatalf("status %d Location %q, want a redirect to the registered URI", r.StatusCode, r.Header.Get("Location"))
			}
			q := loc.Query()
			if q.Get("error") != tt.code || q.Get("state") != "st-9" || q.Get("iss") != o.base || q.Get("code") != "" {
				t.Fatalf("Location %s, want error=%s, state and iss", loc, tt.code)
			}
		})
	}
	pages := []struct {
		name, redirect string
		extra          []string
	}{
		{"unregistered redirect", "http://127.0.0.1:8765/callback-evil", s256},
		{"another host", "https://evil.example/callback", s256},
		{"localhost is not a loopback literal", "http://localhost:8765/callback", s256},
		{"loopback over https", "https://127.0.0.1:8765/callback", s256},
		{"loopback with user info", "http://x@127.0.0.1:9/callback", s256},
		{"unknown client", testRedirect, append([]string{"client_id", "nobody"}, s256...)},
		{"repeated parameter", testRedirect, append([]string{"state", "a"}, s256...)},
	}
	for _, tt := range pages {
		t.Run(tt.name, func(t *testing.T) {
			path := authorizeQuery(c, tt.redirect, tt.extra...)
			if tt.name == "repeated parameter" {
				path += "&state=b"
			}
			r := o.get(t, path)
			if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
				t.Fatalf("status %d Location %q, want 400 and no redirect", r.StatusCode, r.Header.Get("Location"))
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Fatalf("error page headers = %v", r.Header)
			}
		})
	}
	// RFC 8252 7.3: a native app's loopback redirect on any port.
	for _, redirect := range []string{"http://127.0.0.1:40111/callback", "http://127.0.0.1/callback"} {
		if r := o.get(t, authorizeQuery(c, redirect, s256...)); r.StatusCode != http.StatusOK {
			t.Fatalf("loopback redirect %s on another port: status %d, want the sign-in page", redirect, r.StatusCode)
		}
	}
	v6 := o.register(t, map[string]any{"redirect_uris": []string{"http://[::1]:1234/cb"}})
	if r := o.get(t, authorizeQuery(v6, "http://[::1]:5555/cb", s256...)); r.StatusCode != http.StatusOK {
		t.Fatalf("[::1] on another port: status %d", r.StatusCode)
	}
}

func TestOAuthPageHeadersAndCookie(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c := o.register(t, nil)
	r := o.get(t, authorizeQuery(c, testRedirect, "code_challenge", challenge, "code_challenge_method", "S256"))
	h := r.Header
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; frame-ancestors 'none'; form-action 'self' http://127.0.0.1:8765",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	var flow *http.Cookie
	for _, ck := range r.Cookies() {
		if ck.Name == flowCookie {
			flow = ck
		}
	}
	if flow == nil || !strings.HasPrefix(flow.Name, "__Host-") || !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode ||
		flow.Path != "/" || flow.Domain != "" || flow.MaxAge <= 0 || flow.MaxAge > 600 || flow.Secure {
		t.Fatalf("flow cookie over plain HTTP = %+v, want __Host-, HttpOnly, SameSite=Lax, Path=/, short-lived, not Secure", flow)
	}
	// Plain HTTP (development) also gets the unprefixed twin that browsers
	// enforcing prefixes keep; never over HTTPS (TestOAuthSecureCookieOverHTTPS).
	var twin *http.Cookie
	for _, ck := range r.Cookies() {
		if ck.Name == plainFlowCookie {
			twin = ck
		}
	}
	if twin == nil || twin.Value != flow.Value || !twin.HttpOnly || twin.SameSite != http.SameSiteLaxMode {
		t.Fatalf("plain-HTTP twin cookie = %+v", twin)
	}
}

func TestOAuthSecureCookieOverHTTPS(t *testing.T) {
	e := newEnv(t, map[string]string{"TRUSTED_PROXIES": "10.77.0.1", "ALLOWED_HOSTS": ".example.com"})
	o := &oauthEnv{testEnv: e, base: "https://example.com", admin: e.newAdmin()}
	c := o.register(t, nil)
	rs := e.do(req{method: "GET", path: authorizeQuery(c, testRedirect, "code_challenge", challenge, "code_challenge_method", "S256"),
		ip: "10.77.0.1", headers: map[string]string{"X-Forwarded-Proto": "https"}}).status(http.StatusOK)
	ck := (&http.Response{Header: rs.Header()}).Cookies()
	if len(ck) != 1 || ck[0].Name != flowCookie || !ck[0].Secure || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("flow cookie over HTTPS = %+v, want Secure, HttpOnly, SameSite=Lax", ck)
	}
}

func TestOAuthFormsNeedTheCSRFToken(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c := o.register(t, nil)
	u := o.newUser()
	b := o.browser(t)
	f := o.signInForm(t, b, c)
	good := f.Get("csrf")
	post := func(client *http.Client, path string, form url.Values) int {
		r, err := client.PostForm(o.base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	creds := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "id": {f.Get("id")}, "username": {u.username}, "password": {u.password}, "decision": {"allow"}}
	}
	for _, path := range []string{"/oauth/login", "/oauth/consent"} {
		for name, v := range map[string]url.Values{"no token": creds(""), "wrong token": creds(good[:len(good)-2] + "AA"),
			"token of another request": {"csrf": {good}, "id": {"00000000-0000-0000-0000-000000000000"}}} {
			if got := post(b, path, v); got != http.StatusForbidden {
				t.Errorf("%s %s: status %d, want 403", path, name, got)
			}
		}
		// A valid token without the browser's cookie (a forged cross-site post).
		if got := post(http.DefaultClient, path, creds(good)); got != http.StatusForbidden {
			t.Errorf("%s without the flow cookie: status %d, want 403", path, got)
		}
	}
	if strings.Count(o.logBuf.String(), `"event":"csrf_refused"`) < 8 {
		t.Error("CSRF refusals are not logged as security events")
	}
	// Nothing above signed anyone in: the right token still works.
	if got := post(b, "/oauth/login", creds(good)); got != http.StatusOK {
		t.Fatalf("login with the right token: %d", got)
	}
}

func TestOAuthCodeWorksOnceAndIsBoundToItsClient(t *testing.T) {
	o := newOAuthEnv(t, nil)
	a, b := o.register(t, nil), o.register(t, nil)
	u := o.newUser()
	confA, confB := o.config(a, "tasks:read"), o.config(b, "tasks:read")
	verifier := oauth2.GenerateVerifier()
	code := func() string {
		loc := o.signIn(t, o.browser(t), confA.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), u)
		return loc.Query().Get("code")
	}
	// Client B cannot redeem A's code, with or without A's verifier.
	c1 := code()
	if _, err := confB.Exchange(t.Context(), c1, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("B redeeming A's code: %v, want invalid_grant", err)
	}
	// A wrong verifier, or none, fails.
	c2 := code()
	if _, err := confA.Exchange(t.Context(), c2, oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("wrong verifier: %v, want invalid_grant", err)
	}
	c3 := code()
	if _, err := confA.Exchange(t.Context(), c3); err == nil {
		t.Fatal("a code redeemed without its verifier")
	}
	// A redirect_uri other than the request's fails.
	c4 := code()
	other := *confA
	other.RedirectURL = "http://127.0.0.1:9999/callback"
	if _, err := other.Exchange(t.Context(), c4, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("a code redeemed with another redirect_uri")
	}
	// Once; the second use revokes what the first issued.
	c5 := code()
	tok, err := confA.Exchange(t.Context(), c5, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.tasksStatus(t, tok.AccessToken); got != http.StatusOK {
		t.Fatalf("first token: %d", got)
	}
	if _, err := confA.Exchange(t.Context(), c5, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("second use of a code: %v, want invalid_grant", err)
	}
	if got := o.tasksStatus(t, tok.AccessToken); got != http.StatusUnauthorized {
		t.Fatalf("token of a code used twice: %d, want 401", got)
	}
	if got := o.introspect(t, a, tok.AccessToken); got["active"] != false {
		t.Fatalf("introspection of a token of a code used twice: %v", got)
	}
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

// TestOAuthRevocationsTakeEffectAtOnce: every kind of revocation refuses
// the OAuth tokens at once, here and on a second server, for the resource
// side (no database round trip) and for introspection.
func TestOAuthRevocationsTakeEffectAtOnce(t *testing.T) {
	// Behind one load balancer both instances are one issuer (PUBLIC_URL).
	env := map[string]string{"PUBLIC_URL": "http://tm.example.com"}
	o := newOAuthEnv(t, env)
	// The second instance shares only the database: its own pool, its own
	// revocation listener and memory, as another process would have.
	second := o.secondInstance(t, env).withListener(t)
	cases := map[string]func(c registered, u *user, tok *oauth2.Token){
		"oauth revoke": func(c registered, _ *user, tok *oauth2.Token) {
			rq, _ := http.NewRequest("POST", o.base+"/oauth/revoke", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
			rq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rq.SetBasicAuth(c.ClientID, c.ClientSecret)
			r, err := http.DefaultClient.Do(rq)
			if err != nil || r.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %v %v", err, r)
			}
		},
		"revoke refresh token": func(c registered, _ *user, tok *oauth2.Token) {
			rq, _ := http.NewRequest("POST", o.base+"/oauth/revoke", strings.NewReader(url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode()))
			rq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rq.SetBasicAuth(c.ClientID, c.ClientSecret)
			if r, err := http.DefaultClient.Do(rq); err != nil || r.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %v %v", err, r)
			}
		},
		"client deleted": func(c registered, _ *user, _ *oauth2.Token) {
			o.do(req{method: "DELETE", path: "/api/admin/oauth/clients/" + c.ID + "/", auth: o.admin.bearer()}).status(http.StatusNoContent)
		},
		"logout all": func(_ registered, u *user, _ *oauth2.Token) {
			o.do(req{method: "POST", path: "/api/logout/all/", auth: u.bearer()}).status(http.StatusNoContent)
		},
		"password change": func(_ registered, u *user, _ *oauth2.Token) {
			o.do(req{method: "POST", path: "/api/me/password/", auth: u.bearer(), body: map[string]any{
				"current_password": u.password, "new_password": "Another-sturdy-phrase-77"}}).status(http.StatusNoContent)
		},
		"deactivation": func(_ registered, u *user, _ *oauth2.Token) {
			o.do(req{method: "PATCH", path: "/api/admin/users/" + u.id + "/", auth: o.admin.bearer(),
				body: map[string]any{"is_active": false}}).status(http.StatusOK)
		},
		"consent withdrawn": func(c registered, u *user, _ *oauth2.Token) {
			o.do(req{method: "DELETE", path: "/api/me/authorizations/" + c.ClientID + "/", auth: u.bearer()}).status(http.StatusNoContent)
		},
	}
	for name, revoke := range cases {
		t.Run(name, func(t *testing.T) {
			c := o.register(t, nil)
			u := o.newUser()
			conf := o.config(c, "tasks:read", "offline_access")
			tok := o.codeFlow(t, conf, u)
			for _, env := range []*oauthEnv{o, second} {
				if got := env.tasksStatus(t, tok.AccessToken); got != http.StatusOK {
					t.Fatalf("before: %d", got)
				}
				if got := env.introspect(t, c, tok.AccessToken); got["active"] != true {
					t.Fatalf("%s: introspection before revocation = %v", env.base, got)
				}
			}
			revoke(c, u, tok)
			start := time.Now()
			for _, env := range []*oauthEnv{o, second} {
				for env.tasksStatus(t, tok.AccessToken) != http.StatusUnauthorized {
					if time.Since(start) > time.Second {
						t.Fatalf("%s: the OAuth access token still works after a second", env.base)
					}
					time.Sleep(10 * time.Millisecond)
				}
				if name != "client deleted" {
					if got := env.introspect(t, c, tok.AccessToken); got["active"] != false {
						t.Fatalf("%s: introspection after revocation = %v", env.base, got)
					}
				}
			}
			if _, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
				t.Fatal("the refresh token still works")
			}
		})
	}
}

func TestOAuthClientCredentials(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c, cc, tok := o.serviceClient(t)
	if tok.RefreshToken != "" {
		t.Fatal("client credentials issued a refresh token")
	}
	if got := o.introspect(t, c, tok.AccessToken); got["active"] != true || got["client_id"] != c.ClientID || got["sub"] != c.ClientID {
		t.Fatalf("introspection = %v", got)
	}
	// A client acting for itself reaches no user's tasks, and is nobody
	// to userinfo.
	if got := o.tasksStatus(t, tok.AccessToken); got != http.StatusForbidden {
		t.Fatalf("GET /api/tasks/ as a client: %d, want 403", got)
	}
	rq, _ := http.NewRequest("GET", o.base+"/oauth/userinfo", nil)
	rq.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if r, err := http.DefaultClient.Do(rq); err != nil || r.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("userinfo as a client: %v %v, want 401 invalid_token", err, r)
	}
	cc.Scopes = []string{"tasks:write"}
	if _, err := cc.Token(t.Context()); !isOAuthError(err, "invalid_scope") {
		t.Fatalf("a scope the client may not have: %v, want invalid_scope", err)
	}
	cc.Scopes = nil
	cc.ClientSecret = "tms_wrong"
	if _, err := cc.Token(t.Context()); err == nil {
		t.Fatal("a wrong secret got a token")
	}
	// Public clients and clients not registered for it cannot.
	pub := o.register(t, map[string]any{"confidential": false})
	cc = &clientcredentials.Config{ClientID: pub.ClientID, TokenURL: o.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}
	if _, err := cc.Token(t.Context()); err == nil {
		t.Fatal("a public client got a client-credentials token")
	}
	code := o.register(t, nil)
	cc = &clientcredentials.Config{ClientID: code.ClientID, ClientSecret: code.ClientSecret, TokenURL: o.base + "/oauth/token"}
	if _, err := cc.Token(t.Context()); err == nil {
		t.Fatal("a client not registered for client_credentials got a token")
	}
	// Client deletion revokes its tokens at once.
	o.do(req{method: "DELETE", path: "/api/admin/oauth/clients/" + c.ID + "/", auth: o.admin.bearer()}).status(http.StatusNoContent)
	if got := o.tasksStatus(t, tok.AccessToken); got != http.StatusUnauthorized {
		t.Fatalf("token of a deleted client: %d, want 401", got)
	}
}

func TestOAuthTokensOnlyWithinTheirScopesAndRoutes(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c := o.register(t, nil)
	u := o.newUser()
	tok := o.codeFlow(t, o.config(c, "tasks:read", "openid", "profile"), u)
	auth := "Bearer " + tok.AccessToken
	o.do(req{method: "GET", path: "/api/tasks/", auth: auth}).status(http.StatusOK)
	o.do(req{method: "POST", path: "/api/tasks/", auth: auth, body: map[string]any{"title": "From an app"}}).errorCode(http.StatusForbidden, "permission_denied")
	for _, path := range []string{"/api/me/", "/api/sessions/", "/api/keys/", "/api/me/authorizations/", "/api/admin/users/"} {
		o.do(req{method: "GET", path: path, auth: auth}).errorCode(http.StatusForbidden, "permission_denied")
	}
	// Userinfo answers for the user, within the scopes.
	rq, _ := http.NewRequest("GET", o.base+"/oauth/userinfo", nil)
	rq.Header.Set("Authorization", auth)
	r, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	body := read(t, r)
	if r.StatusCode != http.StatusOK || !strings.Contains(body, `"sub":"`+u.id+`"`) || !strings.Contains(body, u.username) {
		t.Fatalf("userinfo: %d %s", r.StatusCode, body)
	}
	// An ID token is not an access token.
	idTok, _ := tok.Extra("id_token").(string)
	o.do(req{method: "GET", path: "/api/tasks/", auth: "Bearer " + idTok}).errorCode(http.StatusUnauthorized, "invalid_token")
	// Our own access token still works everywhere it did.
	o.do(req{method: "GET", path: "/api/me/", auth: u.bearer()}).status(http.StatusOK)
}

func TestOAuthConsentIsRememberedAndWithdrawn(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c := o.register(t, nil)
	u := o.newUser()
	conf := o.config(c, "tasks:read")
	tok := o.codeFlow(t, conf, u)
	list := o.do(req{method: "GET", path: "/api/me/authorizations/", auth: u.bearer()}).status(http.StatusOK).Body.String()
	if !strings.Contains(list, c.ClientID) || !strings.Contains(list, "Task Importer") {
		t.Fatalf("authorizations = %s", list)
	}
	// The second flow skips the consent page: signIn would fail on it otherwise.
	b := o.browser(t)
	r, _ := b.Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	f := formFields(t, read(t, r))
	f.Set("username", u.username)
	f.Set("password", u.password)
	r, err := b.PostForm(o.base+"/oauth/login", f)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if loc, _ := r.Location(); r.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("remembered consent: status %d Location %v, want the code at once", r.StatusCode, loc)
	}
	// Asking for more asks again.
	r, err = b.Get(o.config(c, "tasks:read", "tasks:write").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	f = formFields(t, read(t, r))
	f.Set("username", u.username)
	f.Set("password", u.password)
	if r, err = b.PostForm(o.base+"/oauth/login", f); err != nil {
		t.Fatal(err)
	}
	if page := read(t, r); r.StatusCode != http.StatusOK || !strings.Contains(page, "Create, change and delete your tasks") {
		t.Fatalf("more scopes: status %d, want the consent page naming them", r.StatusCode)
	}
	o.do(req{method: "DELETE", path: "/api/me/authorizations/", auth: u.bearer()}).status(http.StatusNoContent)
	if got := o.tasksStatus(t, tok.AccessToken); got != http.StatusUnauthorized {
		t.Fatalf("after withdrawal: %d", got)
	}
	if list := o.do(req{method: "GET", path: "/api/me/authorizations/", auth: u.bearer()}).Body.String(); strings.Contains(list, c.ClientID) {
		t.Fatalf("withdrawn consent still listed: %s", list)
	}
	// Both are in the user's own security history: the grant names the
	// client, the withdrawal of every application says so.
	type events struct {
		Results []struct {
			Detail map[string]any `json:"detail"`
		} `json:"results"`
	}
	granted := decodeAs[events](o.do(req{method: "GET", path: "/api/me/events/?event=oauth_consent_granted", auth: u.bearer()}).status(http.StatusOK)).Results
	if len(granted) != 1 || fmt.Sprint(granted[0].Detail["client_id"]) != c.ClientID {
		t.Fatalf("consents granted in the history: %+v, want one for %s", granted, c.ClientID)
	}
	withdrawn := decodeAs[events](o.do(req{method: "GET", path: "/api/me/events/?event=oauth_consent_withdrawn", auth: u.bearer()}).status(http.StatusOK)).Results
	if len(withdrawn) != 1 || withdrawn[0].Detail["all_clients"] != true {
		t.Fatalf("consents withdrawn in the history: %+v, want one of every application", withdrawn)
	}
}

func TestOAuthLoginSharesTheLoginLimits(t *testing.T) {
	o := newOAuthEnv(t, map[string]string{"RATE_LIMIT_LOGIN_FAILURES": "3/minute"})
	c := o.register(t, nil)
	u := o.newUser()
	b := o.browser(t)
	f := o.signInForm(t, b, c)
	f.Set("username", u.username)
	f.Set("password", "wrong-password-123")
	for i := range 3 {
		r, _ := b.PostForm(o.base+"/oauth/login", f)
		if page := read(t, r); r.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Wrong username or password") ||
			strings.Contains(page, "wrong-password-123") {
			t.Fatalf("failure %d: status %d", i, r.StatusCode)
		}
	}
	f.Set("password", u.password)
	r, _ := b.PostForm(o.base+"/oauth/login", f)
	read(t, r)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after 3 failures: status %d, want 429 with Retry-After", r.StatusCode)
	}
	// The same budget as POST /api/token/: that address is locked out there too.
	rq, _ := http.NewRequest("POST", o.base+"/api/token/", strings.NewReader(`{"username":"`+u.username+`","password":"`+u.password+`"}`))
	rq.Header.Set("Content-Type", "application/json")
	if r, err := http.DefaultClient.Do(rq); err != nil || r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("POST /api/token/ from the same address: %v %v, want 429", err, r.StatusCode)
	}
	if !strings.Contains(o.logBuf.String(), `"event":"login_failed"`) {
		t.Error("no login_failed events")
	}
}

// TestOAuthBadInputIsNeverA500 throws malformed requests at every OAuth
// end point: each gets a contract error (RFC 6749 JSON, or an error page).
func TestOAuthBadInputIsNeverA500(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c := o.register(t, nil)
	form := "application/x-www-form-urlencoded"
	cases := []struct{ method, path, ctype, body string }{
		{"POST", "/oauth/token", form, ""},
		{"POST", "/oauth/token", form, "grant_type=password&username=a&password=b"},
		{"POST", "/oauth/token", form, "grant_type=implicit"},
		{"POST", "/oauth/token", form, "grant_type=authorization_code&code=%ff%fe&client_id=" + c.ClientID},
		{"POST", "/oauth/token", form, "grant_type=authorization_code&code=abc&client_id=x&client_secret=y"},
		{"POST", "/oauth/token", form, "grant_type=refresh_token&refresh_token=" + strings.Repeat("x", 5000)},
		{"POST", "/oauth/token", form, "grant_type=client_credentials&client_id=" + strings.Repeat("é", 300)},
		{"POST", "/oauth/token", "application/json", `{"grant_type":"client_credentials"}`},
		{"POST", "/oauth/token", form, "%zz"},
		{"POST", "/oauth/introspect", form, "token=abc"},
		{"POST", "/oauth/introspect", form, "token=abc&client_id=" + c.ClientID + "&client_secret=wrong"},
		{"POST", "/oauth/introspect", form, "token=eyJhbGciOiJub25lIn0.e30.&client_id=" + c.ClientID + "&client_secret=" + c.ClientSecret},
		{"POST", "/oauth/revoke", form, "token=abc"},
		{"POST", "/oauth/revoke", form, ""},
		{"GET", "/oauth/userinfo", "", ""},
		{"POST", "/oauth/userinfo", form, "access_token=eyJ.e30.x"},
		{"GET", "/oauth/authorize", "", ""},
		{"GET", "/oauth/authorize?client_id=%00", "", ""},
		{"GET", "/oauth/login", "", ""},
		{"GET", "/oauth/login?id=" + strings.Repeat("a", 36), "", ""},
		{"POST", "/oauth/login", form, "id=x&csrf=y"},
		{"POST", "/oauth/login", "text/plain", "x"},
		{"POST", "/oauth/consent", form, strings.Repeat("a=b&", 10000)},
		{"DELETE", "/api/admin/oauth/clients/" + strings.Repeat("z", 300) + "/", "", ""},
	}
	for _, tt := range cases {
		rq, _ := http.NewRequest(tt.method, o.base+tt.path, strings.NewReader(tt.body))
		if tt.ctype != "" {
			rq.Header.Set("Content-Type", tt.ctype)
		}
		if strings.HasPrefix(tt.path, "/api/") {
			rq.Header.Set("Authorization", o.admin.bearer())
		}
		r, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		body := read(t, r)
		if r.StatusCode >= 500 || r.StatusCode < 400 {
			t.Errorf("%s %.60s: status %d %.200s", tt.method, tt.path, r.StatusCode, body)
			continue
		}
		ct := r.Header.Get("Content-Type")
		switch {
		case strings.HasPrefix(tt.path, "/oauth/token"), strings.HasPrefix(tt.path, "/oauth/introspect"),
			strings.HasPrefix(tt.path, "/oauth/revoke"), strings.HasPrefix(tt.path, "/oauth/userinfo"):
			if !strings.HasPrefix(ct, "application/json") || !strings.Contains(body, `"error":"`) {
				t.Errorf("%s %s: %d %s %.200s, want an RFC 6749 error", tt.method, tt.path, r.StatusCode, ct, body)
			}
		case strings.HasPrefix(tt.path, "/api/"):
			if !strings.Contains(body, `"code":"`) {
				t.Errorf("%s %s: %.200s, want a contract error", tt.method, tt.path, body)
			}
		default:
			if !strings.HasPrefix(ct, "text/html") || strings.Contains(body, "%00") {
				t.Errorf("%s %s: %s, want an error page", tt.method, tt.path, ct)
			}
		}
		if strings.Contains(strings.ToLower(body), "postgres") || strings.Contains(body, "zitadel") || strings.Contains(body, ".go:") {
			t.Errorf("%s %s leaks internals: %.200s", tt.method, tt.path, body)
		}
	}
}

// TestOAuthOffWithoutAKey: production without OAUTH_RSA_KEY_FILE never
// signs with a generated key; the authorization server is then off.
func TestOAuthOffWithoutAKey(t *testing.T) {
	e := newEnv(t, nil, func(d *Deps) { d.Tokens = auth.NewTokens(TokenConfig(loadConfig(t, nil))) })
	for _, r := range []req{{method: "GET", path: "/.well-known/openid-configuration"}, {method: "GET", path: "/oauth/authorize"},
		{method: "POST", path: "/oauth/token", body: "grant_type=client_credentials", headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}} {
		e.do(r).errorCode(http.StatusNotFound, "not_found")
	}
	u := e.newUser()
	e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()}).status(http.StatusOK)
}

// TestOAuthUsesOurCORS: the library's permissive CORS is off; ours
// answers for the OAuth end points as for every route.
func TestOAuthUsesOurCORS(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/oauth/token", "/.well-known/openid-configuration", "/oauth/userinfo"} {
		r := e.do(req{method: "OPTIONS", path: path, headers: map[string]string{"Origin": "https://evil.example",
			"Access-Control-Request-Method": "POST"}})
		if got := r.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("OPTIONS %s from an unlisted origin: Access-Control-Allow-Origin %q", path, got)
		}
		r = e.do(req{method: "OPTIONS", path: path, headers: map[string]string{"Origin": "http://localhost:3000",
			"Access-Control-Request-Method": "POST"}})
		if got := r.Header().Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
			t.Errorf("OPTIONS %s from a listed origin: Access-Control-Allow-Origin %q", path, got)
		}
	}
}

// TestOAuthRequestBelongsToItsBrowser: a sign-in link opened in another
// browser (an attacker's request id sent to a victim, or the other way
// round) is refused, even with a CSRF token that fits that browser's own
// cookie.
func TestOAuthRequestBelongsToItsBrowser(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c := o.register(t, nil)
	u := o.newUser()
	first := o.browser(t)
	id := o.signInForm(t, first, c).Get("id")
	other := o.browser(t)
	r, err := other.Get(o.base + "/oauth/login?id=" + id)
	if err != nil {
		t.Fatal(err)
	}
	read(t, r)
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("the sign-in page of another browser's request: status %d, want 400", r.StatusCode)
	}
	var secret string
	for _, ck := range other.Jar.Cookies(mustURL(t, o.base)) {
		if ck.Name == plainFlowCookie {
			secret = ck.Value
		}
	}
	if secret == "" {
		t.Fatal("the other browser got no flow cookie")
	}
	r, err = other.PostForm(o.base+"/oauth/login", url.Values{"csrf": {csrfToken(secret, id)}, "id": {id},
		"username": {u.username}, "password": {u.password}})
	if err != nil {
		t.Fatal(err)
	}
	read(t, r)
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("signing in to another browser's request: status %d, want 400", r.StatusCode)
	}
	// The browser it belongs to still signs in.
	r, _ = first.Get(o.base + "/oauth/login?id=" + id)
	f := formFields(t, read(t, r))
	f.Set("username", u.username)
	f.Set("password", u.password)
	if r, err = first.PostForm(o.base+"/oauth/login", f); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("its own browser: %v %v", err, r.StatusCode)
	}
	r.Body.Close()
}

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestOAuthKeyRotation: after the signing key changes, a token of the old
// key still works (resource side and introspection) while the old key is
// listed in OAUTH_PREVIOUS_RSA_KEY_FILES, and the JWKS publishes both;
// without it the token is refused.
func TestOAuthKeyRotation(t *testing.T) {
	env := map[string]string{"PUBLIC_URL": "http://tm.example.com"}
	o := newOAuthEnv(t, env)
	c := o.register(t, nil)
	tok := o.codeFlow(t, o.config(c, "tasks:read"), o.newUser())

	oldPub := filepath.Join(t.TempDir(), "old.pem")
	der, _ := x509.MarshalPKIXPublicKey(&testRSAKey().PublicKey)
	if err := os.WriteFile(oldPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	next, _ := rsa.GenerateKey(rand.Reader, 2048)
	withKey := func(previous bool) func(*Deps) {
		return func(d *Deps) {
			cfg := loadConfig(t, env)
			if previous {
				cfg = loadConfig(t, map[string]string{"PUBLIC_URL": env["PUBLIC_URL"], "OAUTH_PREVIOUS_RSA_KEY_FILES": oldPub})
			}
			cfg.OAuthRSAKey = next
			d.Tokens = auth.NewTokens(TokenConfig(cfg))
		}
	}
	rotated := newEnvOn(t, o.db, o.dsn, env, withKey(true)).withListener(t)
	if got := rotated.tasksStatus(t, tok.AccessToken); got != http.StatusOK {
		t.Fatalf("a token of the previous key after the rotation: %d", got)
	}
	if got := rotated.introspect(t, c, tok.AccessToken); got["active"] != true {
		t.Fatalf("introspection of a token of the previous key: %v", got)
	}
	jwks := decodeAs[struct{ Keys []auth.JWK }](rotated.do(req{method: "GET", path: "/.well-known/jwks.json"}).status(http.StatusOK))
	if len(jwks.Keys) != 2 || jwks.Keys[0].Kid != auth.RSAThumbprint(&next.PublicKey) || jwks.Keys[1].Kid != auth.RSAThumbprint(&testRSAKey().PublicKey) {
		t.Fatalf("jwks after the rotation = %+v, want the new key, then the old", jwks.Keys)
	}
	retired := newEnvOn(t, o.db, o.dsn, env, withKey(false)).withListener(t)
	if got := retired.tasksStatus(t, tok.AccessToken); got != http.StatusUnauthorized {
		t.Fatalf("a token of a retired key: %d, want 401", got)
	}
}

// Clients acting for themselves have no user; each still counts against a
// budget of its own, so one client cannot spend another's.
func TestOAuthClientsHaveTheirOwnBudget(t *testing.T) {
	o := newOAuthEnv(t, map[string]string{"RATE_LIMIT_USER": "2/minute"})
	token := func() string {
		_, _, tok := o.serviceClient(t)
		return tok.AccessToken
	}
	a, b := token(), token()
	for i, want := range []int{http.StatusForbidden, http.StatusForbidden, http.StatusTooManyRequests} {
		if got := o.tasksStatus(t, a); got != want {
			t.Fatalf("client A, request %d: %d, want %d", i+1, got, want)
		}
	}
	if got := o.tasksStatus(t, b); got != http.StatusForbidden {
		t.Fatalf("client B after A spent its budget: %d, want 403 (its own budget)", got)
	}
}

// signInForm opens a valid authorization request of c in browser b and
// returns the fields of the sign-in form it shows.
func (o *oauthEnv) signInForm(t *testing.T, b *http.Client, c registered) url.Values {
	t.Helper()
	r, err := b.Get(o.base + authorizeQuery(c, testRedirect, "code_challenge", challenge, "code_challenge_method", "S256"))
	if err != nil {
		t.Fatal(err)
	}
	return formFields(t, read(t, r))
}

// serviceClient registers a confidential client_credentials client that
// may read tasks, and gets its first token.
func (o *oauthEnv) serviceClient(t *testing.T) (registered, *clientcredentials.Config, *oauth2.Token) {
	t.Helper()
	c := o.register(t, map[string]any{"grant_types": []string{"client_credentials"}, "redirect_uris": []string{},
		"scopes": []string{"tasks:read"}})
	cc := &clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: o.base + "/oauth/token"}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	return c, cc, tok
}
