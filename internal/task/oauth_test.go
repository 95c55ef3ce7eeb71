package task

import "testing"

func TestRedirectAllowed(t *testing.T) {
	c := &OAuthClient{RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1:8765/callback", "http://[::1]/cb?x=1"}}
	for uri, want := range map[string]bool{
		"https://app.example/cb":              true,
		"https://app.example/cb/":             false,
		"https://app.example/cb?x=1":          false,
		"https://APP.example/cb":              false,
		"http://127.0.0.1:8765/callback":      true,
		"http://127.0.0.1:1/callback":         true, // RFC 8252 7.3: any port
		"http://127.0.0.1/callback":           true,
		"http://127.0.0.1:99999/callback":     false,
		"http://127.0.0.1:8765/callback/evil": false,
		"http://localhost:8765/callback":      false, // RFC 8252 8.3
		"https://127.0.0.1:8765/callback":     false,
		"http://u@127.0.0.1:8765/callback":    false,
		"http://127.0.0.1:8765/callback#f":    false,
		"http://[::1]:4000/cb?x=1":            true,
		"http://[::1]:4000/cb":                false,
		"http://[::1]:4000/callback":          false, // a loopback URI only matches its own host
	} {
		if got := c.RedirectAllowed(uri); got != want {
			t.Errorf("RedirectAllowed(%q) = %v, want %v", uri, got, want)
		}
	}
}

func TestCheckOAuthClient(t *testing.T) {
	for _, tt := range []struct {
		name         string
		uris, grants []string
		confidential bool
		ok           bool
	}{
		{"web app", []string{"https://a.example/cb"}, []string{GrantAuthorizationCode, GrantRefreshToken}, true, true},
		{"native app", []string{"http://127.0.0.1/cb", "com.example.app:/cb"}, []string{GrantAuthorizationCode}, false, true},
		{"service", nil, []string{GrantClientCredentials}, true, true},
		{"code without redirect", nil, []string{GrantAuthorizationCode}, true, false},
		{"redirect without code", []string{"https://a.example/cb"}, []string{GrantClientCredentials}, true, false},
		{"plain http", []string{"http://a.example/cb"}, []string{GrantAuthorizationCode}, true, false},
		{"fragment", []string{"https://a.example/cb#x"}, []string{GrantAuthorizationCode}, true, false},
		{"relative", []string{"/cb"}, []string{GrantAuthorizationCode}, true, false},
		{"wildcard", []string{"https://*.example/cb"}, []string{GrantAuthorizationCode}, true, false},
		{"javascript", []string{"javascript:alert(1)"}, []string{GrantAuthorizationCode}, true, false},
		{"refresh alone", nil, []string{GrantRefreshToken}, true, false},
		{"public service", nil, []string{GrantClientCredentials}, false, false},
	} {
		if err := CheckOAuthClient(tt.uris, tt.grants, tt.confidential); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
