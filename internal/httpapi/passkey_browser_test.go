package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// passkeyEnv is a server on http://localhost:port, the relying party
// localhost (WebAuthn refuses IP addresses), and headless Chromium on one
// of its pages with a virtual authenticator: CTAP2, resident keys, user
// verification that succeeds, presence given at once.
type passkeyEnv struct {
	*oauthEnv
	ctx  context.Context
	auth webauthn.AuthenticatorID
}

func newPasskeyEnv(t *testing.T) *passkeyEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	e := newEnv(t, map[string]string{"ALLOWED_HOSTS": "localhost,.example.com", "WEBAUTHN_RP_ID": "localhost",
		"WEBAUTHN_ORIGINS": base, "RATE_LIMIT_ANON": "10000/minute", "RATE_LIMIT_LOGIN": "10000/minute"})
	ts := httptest.NewUnstartedServer(e.srv)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	p := &passkeyEnv{oauthEnv: &oauthEnv{testEnv: e, base: base, admin: e.newAdmin()}, ctx: headless(t, 900, 900)}
	if err := chromedp.Do(p.ctx, chromedp.Navigate(base+"/healthz")); err != nil {
		t.Fatalf("opening the origin: %v", err)
	}
	if _, err := chromedp.Call(p.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(p.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
			Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	p.auth = res.AuthenticatorID
	return p
}

// The browser's side of the ceremonies: the options as the API gave them,
// their binary members decoded, and the credential back as JSON
// (PublicKeyCredential.toJSON).
const ceremonyJS = `(async (opts, create) => {
	const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
	const pk = JSON.parse(opts).publicKey;
	pk.challenge = b64(pk.challenge);
	if (pk.user) pk.user.id = b64(pk.user.id);
	for (const c of pk.excludeCredentials || []) c.id = b64(c.id);
	for (const c of pk.allowCredentials || []) c.id = b64(c.id);
	const cred = create ? await navigator.credentials.create({publicKey: pk}) : await navigator.credentials.get({publicKey: pk});
	return JSON.stringify(cred.toJSON());
})(%s, %t)`

func (p *passkeyEnv) ceremony(t *testing.T, opts []byte, create bool) json.RawMessage {
	t.Helper()
	arg, _ := json.Marshal(string(opts))
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(ceremonyJS, arg, create), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("navigator.credentials (create=%v): %v", create, err)
	}
	return json.RawMessage(out)
}

// register gives u a passkey named name, through the API and the browser,
// and returns it and the authenticator's answer.
func (p *passkeyEnv) register(t *testing.T, u *user, name string) (passkeyJSON, json.RawMessage) {
	t.Helper()
	opts := p.do(req{method: "POST", path: "/api/me/passkeys/begin/", auth: u.bearer(),
		body: map[string]string{"current_password": u.password}}).status(http.StatusOK)
	var o struct {
		PublicKey struct {
			RP struct {
				ID string `json:"id"`
			} `json:"rp"`
			AuthenticatorSelection struct {
				ResidentKey      string `json:"residentKey"`
				UserVerification string `json:"userVerification"`
			} `json:"authenticatorSelection"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts.Body.Bytes(), &o); err != nil || o.PublicKey.RP.ID != "localhost" ||
		o.PublicKey.AuthenticatorSelection.ResidentKey != "required" || o.PublicKey.AuthenticatorSelection.UserVerification != "required" {
		t.Fatalf("creation options %s: want rp localhost, a resident key and user verification required", opts.Body.String())
	}
	cred := p.ceremony(t, opts.Body.Bytes(), true)
	return decodeAs[passkeyJSON](p.do(req{method: "POST", path: "/api/me/passkeys/finish/", auth: u.bearer(),
		body: map[string]any{"name": name, "credential": cred}}).status(http.StatusCreated)), cred
}

// passwordStepOptions logs u in with the password and returns the
// mfa_token and the passkey options of the mfa_required answer.
func (p *passkeyEnv) passwordStepOptions(t *testing.T, u *user) (string, []byte) {
	t.Helper()
	r := p.do(req{method: "POST", path: "/api/token/", body: map[string]string{"username": u.username, "password": u.password}})
	r.errorCode(http.StatusUnauthorized, "mfa_required")
	var got struct {
		Error struct {
			MFA struct {
				Token          string          `json:"token"`
				Methods        []string        `json:"methods"`
				PasskeyOptions json.RawMessage `json:"passkey_options"`
			} `json:"mfa"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body.Bytes(), &got); err != nil || !slices.Contains(got.Error.MFA.Methods, "passkey") ||
		len(got.Error.MFA.PasskeyOptions) == 0 {
		t.Fatalf("mfa_required for a user with a passkey: %s", r.Body.String())
	}
	return got.Error.MFA.Token, got.Error.MFA.PasskeyOptions
}

func (p *passkeyEnv) signInOptions(t *testing.T) []byte {
	t.Helper()
	return p.do(req{method: "POST", path: "/api/token/passkey/begin/", body: map[string]any{}}).status(http.StatusOK).Body.Bytes()
}

func wantAMR(t *testing.T, access string, want ...string) {
	t.Helper()
	got, _ := json.Marshal(claimsOf(t, access)["amr"])
	if w, _ := json.Marshal(want); string(got) != string(w) {
		t.Fatalf("amr = %s, want %s", got, w)
	}
}

// TestPasskeysInBrowser: a passkey made by a (virtual) authenticator in
// Chromium registers, then signs in as a second factor and without a
// password, and steps up a key mint; the same answer twice, an answer
// with a forged signature, and an answer for another account are refused.
func TestPasskeysInBrowser(t *testing.T) {
	p := newPasskeyEnv(t)
	u := p.newUser()

	pk, cred := p.register(t, u, " Laptop ")
	if pk.Name != "Laptop" || pk.LastUsedAt != nil {
		t.Fatalf("registered passkey = %+v", pk)
	}
	// The same answer again: its ceremony is spent. Garbage is no answer.
	p.do(req{method: "POST", path: "/api/me/passkeys/finish/", auth: u.bearer(),
		body: map[string]any{"name": "again", "credential": cred}}).fieldError("credential")
	p.do(req{method: "POST", path: "/api/me/passkeys/finish/", auth: u.bearer(),
		body: map[string]any{"name": "junk", "credential": map[string]string{"id": "x"}}}).fieldError("credential")
	list := decodeAs[pageJSON[passkeyJSON]](p.do(req{method: "GET", path: "/api/me/passkeys/", auth: u.bearer()}).status(http.StatusOK))
	if len(list.Results) != 1 || list.Results[0].ID != pk.ID {
		t.Fatalf("passkeys = %+v", list.Results)
	}
	p.assertAudited(u, "mfa_enrolled")

	t.Run("second factor", func(t *testing.T) {
		token, opts := p.passwordStepOptions(t, u)
		answer := p.ceremony(t, opts, false)
		pair := decodeAs[tokenPairJSON](p.do(req{method: "POST", path: "/api/token/mfa/",
			body: map[string]any{"mfa_token": token, "passkey": answer}}).status(http.StatusOK))
		wantAMR(t, pair.Access, "pwd", "hwk", "mfa")
		// The same answer again, with a new login: its ceremony is spent.
		token, _ = p.passwordStepOptions(t, u)
		p.do(req{method: "POST", path: "/api/token/mfa/", body: map[string]any{"mfa_token": token, "passkey": answer}}).
			errorCode(http.StatusUnauthorized, "authentication_failed")
		list := decodeAs[pageJSON[passkeyJSON]](p.do(req{method: "GET", path: "/api/me/passkeys/", auth: u.bearer()}))
		if list.Results[0].LastUsedAt == nil {
			t.Fatal("last_used_at not set after a sign-in")
		}
	})

	t.Run("passwordless", func(t *testing.T) {
		answer := p.ceremony(t, p.signInOptions(t), false)
		pair := decodeAs[tokenPairJSON](p.do(req{method: "POST", path: "/api/token/passkey/finish/",
			body: map[string]any{"passkey": answer}}).status(http.StatusOK))
		wantAMR(t, pair.Access, "hwk", "mfa")
		me := decodeAs[userJSON](p.do(req{method: "GET", path: "/api/me/", auth: "Bearer " + pair.Access}).status(http.StatusOK))
		if me.Username != u.username {
			t.Fatalf("signed in as %q, want %q", me.Username, u.username)
		}
		p.do(req{method: "POST", path: "/api/token/passkey/finish/", body: map[string]any{"passkey": answer}}).
			errorCode(http.StatusUnauthorized, "authentication_failed")
	})

	t.Run("forged signature", func(t *testing.T) {
		bogus := true
		if _, err := chromedp.Call(p.ctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{
			AuthenticatorID: p.auth, IsBogusSignature: &bogus}); err != nil {
			t.Fatal(err)
		}
		answer := p.ceremony(t, p.signInOptions(t), false)
		if _, err := chromedp.Call(p.ctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{AuthenticatorID: p.auth}); err != nil {
			t.Fatal(err)
		}
		p.do(req{method: "POST", path: "/api/token/passkey/finish/", body: map[string]any{"passkey": answer}}).
			errorCode(http.StatusUnauthorized, "authentication_failed")
		token, _ := p.passwordStepOptions(t, u)
		p.do(req{method: "POST", path: "/api/token/mfa/", body: map[string]any{"mfa_token": token, "passkey": answer}}).
			errorCode(http.StatusUnauthorized, "authentication_failed")
	})

	t.Run("step-up and another account", func(t *testing.T) {
		answer := p.ceremony(t, p.signInOptions(t), false)
		pair := decodeAs[tokenPairJSON](p.do(req{method: "POST", path: "/api/token/passkey/finish/",
			body: map[string]any{"passkey": answer}}).status(http.StatusOK))
		answer = p.ceremony(t, p.signInOptions(t), false)
		p.do(req{method: "POST", path: "/api/keys/", auth: "Bearer " + pair.Access,
			body: map[string]any{"name": "ci", "current_password": u.password, "passkey": answer}}).status(http.StatusCreated)
		// u's passkey proves nothing for another account, whether its
		// ceremony was u's login or a passwordless one.
		other := p.newUser()
		p.enroll(other)
		_, opts := p.passwordStepOptions(t, u)
		for _, answer := range []json.RawMessage{p.ceremony(t, opts, false), p.ceremony(t, p.signInOptions(t), false)} {
			token := p.passwordStep(other, "")
			p.do(req{method: "POST", path: "/api/token/mfa/", body: map[string]any{"mfa_token": token, "passkey": answer}}).
				errorCode(http.StatusUnauthorized, "authentication_failed")
		}
	})

	var codes []string
	t.Run("recovery codes for passkeys alone", func(t *testing.T) {
		rc := decodeAs[recoveryCodesJSON](p.do(req{method: "POST", path: "/api/me/mfa/recovery-codes/", auth: u.bearer(),
			body: map[string]any{"current_password": u.password, "passkey": p.ceremony(t, p.signInOptions(t), false)}}).status(http.StatusOK))
		if codes = rc.RecoveryCodes; len(codes) != 10 {
			t.Fatalf("recovery codes = %v", codes)
		}
		token, _ := p.passwordStepOptions(t, u)
		pair := decodeAs[tokenPairJSON](p.finish(token, "", map[string]string{"recovery_code": codes[0]}).status(http.StatusOK))
		wantAMR(t, pair.Access, "pwd", "otp", "mfa")
		token, _ = p.passwordStepOptions(t, u)
		p.finish(token, "", map[string]string{"code": "123456"}).errorCode(http.StatusUnauthorized, "authentication_failed")
	})

	t.Run("delete", func(t *testing.T) {
		// u's first token is of a password login: it cannot remove the
		// second factor. A session that just used the passkey can.
		p.do(req{method: "DELETE", path: "/api/me/passkeys/" + pk.ID.String() + "/", auth: u.bearer()}).
			errorCode(http.StatusUnauthorized, "mfa_required")
		pair := decodeAs[tokenPairJSON](p.do(req{method: "POST", path: "/api/token/passkey/finish/",
			body: map[string]any{"passkey": p.ceremony(t, p.signInOptions(t), false)}}).status(http.StatusOK))
		fresh := "Bearer " + pair.Access
		p.do(req{method: "DELETE", path: "/api/me/passkeys/" + pk.ID.String() + "/", auth: fresh}).status(http.StatusNoContent)
		p.do(req{method: "DELETE", path: "/api/me/passkeys/" + pk.ID.String() + "/", auth: fresh}).errorCode(http.StatusNotFound, "not_found")
		p.login(u) // no second factor left: the password alone
		// The recovery codes went with the last second factor: they do not
		// come back to life with the next passkey.
		p.register(t, u, "Phone")
		token, _ := p.passwordStepOptions(t, u)
		p.finish(token, "", map[string]string{"recovery_code": codes[1]}).errorCode(http.StatusUnauthorized, "authentication_failed")
	})
}

// TestOAuthSignInWithPasskey completes the OAuth sign-in page's second
// step with the page's passkey button, in Chromium under the page's CSP
// (which allows the one same-origin script), and sees the callback; the
// ID token says a hardware key was used.
func TestOAuthSignInWithPasskey(t *testing.T) {
	p := newPasskeyEnv(t)
	u := p.newUser()
	p.register(t, u, "Laptop")

	app, got := callbackApp(t)
	c := p.oauthEnv.register(t, map[string]any{"redirect_uris": []string{app.URL + "/callback"}})
	conf := &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: app.URL + "/callback",
		Scopes: []string{"tasks:read", "openid"}, Endpoint: oauth2.Endpoint{AuthURL: p.base + "/oauth/authorize", TokenURL: p.base + "/oauth/token"}}
	verifier := oauth2.GenerateVerifier()

	problems := pageProblems(t, p.ctx, "status of 401") // the wrong code's page
	err := runSteps(p.ctx, []browserStep{
		{"open authorize", chromedp.Navigate(conf.AuthCodeURL("pk-state", oauth2.S256ChallengeOption(verifier)))},
		{"sign-in page", chromedp.WaitVisible(`#username`)},
		{"username", chromedp.SendKeys(`#username`, u.username)},
		{"password", chromedp.SendKeys(`#password`, u.password)},
		{"sign in", chromedp.Click(`button[type=submit]`)},
		{"passkey button", chromedp.WaitVisible(`#passkey-button`)},
		{"a wrong code", chromedp.SendKeys(`#code`, "000000")},
		{"submit it", jsClick(`form:not(#passkey-form) button[type=submit]`)},
		{"asked again", chromedp.WaitVisible(`p.error`)},
		{"with the button", chromedp.WaitVisible(`#passkey-button`)},
		{"use the passkey", jsClick(`#passkey-button`)},
		{"consent page", chromedp.WaitVisible(`button[value=allow]`)},
		{"allow", jsClick(`button[value=allow]`)},
	})
	if err != nil {
		text, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("driving the sign-in pages: %v; the page reads: %.500s (console: %v)", err, text, problems())
	}
	var q url.Values
	select {
	case q = <-got:
	case <-time.After(15 * time.Second):
		t.Fatalf("the browser never reached the client's callback (console: %v)", problems())
	}
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchanging the code: %v", err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if amr, _ := json.Marshal(claimsOf(t, idToken)["amr"]); !strings.Contains(string(amr), `"hwk"`) {
		t.Fatalf("ID token amr = %s, want hwk among them", amr)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("the pages logged errors (a CSP violation?): %v", p)
	}
}
