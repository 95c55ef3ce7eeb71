package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestOAuthSignInAsksForTheSecondFactor: on the OAuth sign-in page the
// password of a user with TOTP leads to a code field, not to consent; a
// wrong code stays there, the right one goes on, and the ID token says so.
func TestOAuthSignInAsksForTheSecondFactor(t *testing.T) {
	o := newOAuthEnv(t, nil)
	c := o.register(t, nil)
	u := o.newUser()
	a, _ := o.enroll(u)
	conf := o.config(c, "openid", "tasks:read")
	b := o.browser(t)
	verifier := oauth2.GenerateVerifier()
	r, err := b.Get(conf.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	f := formFields(t, read(t, r))
	f.Set("username", u.username)
	f.Set("password", u.password)
	if r, err = b.PostForm(o.base+"/oauth/login", f); err != nil {
		t.Fatal(err)
	}
	page := read(t, r)
	if r.StatusCode != http.StatusOK || !strings.Contains(page, `name="mfa_token"`) || strings.Contains(page, `value="allow"`) {
		t.Fatalf("after the password: status %d, want the code field: %.400s", r.StatusCode, page)
	}
	// A passkey answer that is no answer: the same step again, a 400.
	f = formFields(t, page)
	f.Del("code")
	f.Set("passkey", "not json")
	if r, err = b.PostForm(o.base+"/oauth/login", f); err != nil {
		t.Fatal(err)
	}
	if page = read(t, r); r.StatusCode != http.StatusBadRequest || !strings.Contains(page, `name="mfa_token"`) {
		t.Fatalf("malformed passkey: status %d, want 400 and the second step again: %.400s", r.StatusCode, page)
	}
	f = formFields(t, page)
	f.Set("code", a.wrong())
	if r, err = b.PostForm(o.base+"/oauth/login", f); err != nil {
		t.Fatal(err)
	}
	if page = read(t, r); r.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "That code is not valid.") {
		t.Fatalf("wrong code: status %d: %.400s", r.StatusCode, page)
	}
	f = formFields(t, page)
	f.Set("code", a.fresh())
	if r, err = b.PostForm(o.base+"/oauth/login", f); err != nil {
		t.Fatal(err)
	}
	if page = read(t, r); r.StatusCode != http.StatusOK || !strings.Contains(page, `value="allow"`) {
		t.Fatalf("right code: status %d, want the consent page: %.400s", r.StatusCode, page)
	}
	f = formFields(t, page)
	f.Set("decision", "allow")
	if r, err = b.PostForm(o.base+"/oauth/consent", f); err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	loc, err := r.Location()
	if err != nil {
		t.Fatalf("consent: status %d, no Location", r.StatusCode)
	}
	tok, err := conf.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		t.Fatal("no id_token")
	}
	if amr, _ := json.Marshal(claimsOf(t, idToken)["amr"]); string(amr) != `["pwd","otp","mfa"]` {
		t.Fatalf("id_token amr = %s", amr)
	}
}
