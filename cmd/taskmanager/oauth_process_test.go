package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/logtest"
	"github.com/acme/taskmanager/internal/pgtest"
)

// TestOAuthRevocationAcrossProcesses: two server processes on one
// database, one issuer and one OAuth key. A token the code flow got from
// one is refused by the other within a second of each kind of revocation
// made on the first, on /api/tasks/ (from memory) and by introspection.
func TestOAuthRevocationAcrossProcesses(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "oauth.pem")
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DATABASE_URL": pgtest.URL(t), "JWT_SIGNING_KEY": strings.Repeat("oauth-pk", 8), "OAUTH_RSA_KEY_FILE": keyFile,
		"PUBLIC_URL": "http://tm.example.com", "ALLOWED_HOSTS": "127.0.0.1,tm.example.com",
		"RATE_LIMIT_ANON": "10000/minute", "RATE_LIMIT_LOGIN": "10000/minute", "RATE_LIMIT_TOKEN": "10000/minute",
		"RATE_LIMIT_REGISTER": "10000/minute",
	}
	ctx := context.Background()
	var out, errOut logtest.Buffer
	if err := run(ctx, []string{"taskmanager", "migrate"}, envFunc(env), nil, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	const redirect = "http://127.0.0.1:8765/callback"
	clientID, secret := registerClient(t, env, "--name", "Importer", "--redirect-uri", redirect, "--scope", "tasks:read")
	a, b := startProcess(t, env), startProcess(t, env)

	form := func(p *process, path string, v url.Values, auth bool) (int, string) {
		r, _ := http.NewRequest("POST", p.base+path, strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth {
			r.SetBasicAuth(clientID, secret)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	introspect := func(p *process, token string) bool {
		code, body := form(p, "/oauth/introspect", url.Values{"token": {token}}, true)
		var got struct{ Active bool }
		if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
			t.Fatalf("introspect: %d %s", code, body)
		}
		return got.Active
	}
	fields := regexp.MustCompile(`name="(csrf|id)" value="([^"]*)"`)
	// codeFlow signs in on a's pages as a browser would, consents, and
	// redeems the code at a's token endpoint.
	codeFlow := func(username, password string) string {
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		verifier := strings.Repeat("v", 43) + username
		sum := sha256.Sum256([]byte(verifier))
		q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "scope": {"tasks:read"},
			"state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
		resp, err := browser.Get(a.base + "/oauth/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		for step, extra := range []url.Values{{"username": {username}, "password": {password}}, {"decision": {"allow"}}} {
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			v := url.Values{}
			for _, m := range fields.FindAllStringSubmatch(string(page), -1) {
				v.Set(m[1], html.UnescapeString(m[2]))
			}
			for k, x := range extra {
				v[k] = x
			}
			if resp, err = browser.PostForm(a.base+[]string{"/oauth/login", "/oauth/consent"}[step], v); err != nil {
				t.Fatal(err)
			}
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("iss") != "http://tm.example.com" {
			t.Fatalf("consent answered %d %v, want the redirect with a code and iss", resp.StatusCode, loc)
		}
		code, body := form(a, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"redirect_uri": {redirect}, "code_verifier": {verifier}}, true)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &tok) != nil {
			t.Fatalf("token: %d %s", code, body)
		}
		return tok.AccessToken
	}

	kinds := map[string]func(oauthToken, access, username, password string){
		"oauth revoke": func(oauthToken, _, _, _ string) {
			if code, _ := form(a, "/oauth/revoke", url.Values{"token": {oauthToken}}, true); code != 200 {
				t.Fatalf("revoke = %d", code)
			}
		},
		"logout all": func(_, access, _, _ string) {
			if code, _ := a.call(t, "POST", "/api/logout/all/", access, nil); code != 204 {
				t.Fatalf("logout/all = %d", code)
			}
		},
		"password change": func(_, access, _, password string) {
			if code, _ := a.call(t, "POST", "/api/me/password/", access, map[string]string{"current_password": password,
				"new_password": "Another-process-phrase-8"}); code != 204 {
				t.Fatalf("password change = %d", code)
			}
		},
	}
	n := 0
	for name, revoke := range kinds {
		t.Run(name, func(t *testing.T) {
			n++
			creds := map[string]string{"username": "oauthproc" + string(rune('a'+n)), "password": "Two-process-phrase-9"}
			if code, _ := a.call(t, "POST", "/api/register/", "", creds); code != 201 {
				t.Fatalf("register = %d", code)
			}
			_, pair := a.call(t, "POST", "/api/token/", "", creds)
			access, _ := pair["access"].(string)
			tok := codeFlow(creds["username"], creds["password"])
			if code, _ := b.call(t, "GET", "/api/tasks/", tok, nil); code != 200 || !introspect(b, tok) {
				t.Fatalf("the other process refuses a fresh OAuth token: %d", code)
			}
			revoke(tok, access, creds["username"], creds["password"])
			start := time.Now()
			for {
				code, _ := b.call(t, "GET", "/api/tasks/", tok, nil)
				if code == 401 {
					break
				}
				if time.Since(start) > time.Second {
					t.Fatalf("the other process still answers %d for a revoked OAuth token after 1 s", code)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if introspect(b, tok) {
				t.Fatal("the other process's introspection calls a revoked token active")
			}
		})
	}
}
