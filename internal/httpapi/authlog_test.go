package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEvery401IsLoggedWithItsReason: whichever check refuses, the access
// line of a 401 is at info level, carries the request id the client got,
// the sentence it read and a reason word, and never the credential.
func TestEvery401IsLoggedWithItsReason(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	key := e.newKey(u)
	expired, revoked := e.refusedAccess(u)
	// A key that lapses a moment from now, before it is tried below.
	lapseAt := time.Now().Add(time.Second)
	lapsing := decodeAs[keyJSON](e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(), body: map[string]any{
		"name": "lapsing", "current_password": u.password, "expires_at": lapseAt.Format(time.RFC3339Nano)}}).
		status(http.StatusCreated)).Key
	reused := e.newUser()
	spent := reused.refresh
	e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": spent}}).status(http.StatusOK)
	loggedOut := e.newUser()
	e.do(req{method: "POST", path: "/api/logout/all/", auth: loggedOut.bearer()}).status(http.StatusNoContent)

	cases := []struct {
		name   string
		r      req
		secret string // what must not reach the log
		reason string
	}{
		{"no credentials", req{method: "GET", path: "/api/tasks/"}, "", "missing"},
		{"unknown scheme", req{method: "GET", path: "/api/tasks/", auth: "Basic dXNlcjpwYXNz"}, "dXNlcjpwYXNz", "unknown_scheme"},
		{"Bearer alone", req{method: "GET", path: "/api/tasks/", auth: "Bearer "}, "", "empty_credential"},
		{"garbage token", req{method: "GET", path: "/api/tasks/", auth: "Bearer garbage-token-value"}, "garbage-token-value", "malformed_token"},
		{"bad signature", req{method: "GET", path: "/api/tasks/", auth: "Bearer " + u.access[:len(u.access)-4] + "AAAA"}, u.access[:len(u.access)-4], "invalid"},
		{"expired token", req{method: "GET", path: "/api/tasks/", auth: "Bearer " + expired}, expired, "expired"},
		{"revoked token", req{method: "GET", path: "/api/tasks/", auth: revoked.bearer()}, revoked.access, "revoked"},
		{"JWT after Token", req{method: "GET", path: "/api/tasks/", auth: "Token " + u.access}, u.access, "jwt_wrong_scheme"},
		{"key after Bearer", req{method: "GET", path: "/api/tasks/", auth: "Bearer " + key}, key, "key_wrong_scheme"},
		{"malformed key", req{method: "GET", path: "/api/tasks/", auth: "Api-Key not-a-key"}, "not-a-key", "malformed_key"},
		{"unknown key", req{method: "GET", path: "/api/tasks/", auth: "Api-Key tm_0123456789ab_" + strings.Repeat("x", 43)}, strings.Repeat("x", 43), "unknown_key"},
		{"expired key", req{method: "GET", path: "/api/tasks/", auth: "Api-Key " + lapsing}, lapsing, "unknown_key"},
		{"wrong password at login", req{method: "POST", path: "/api/token/",
			body: map[string]string{"username": u.username, "password": "Wrong-pass-phrase-1"}}, "Wrong-pass-phrase-1", "bad_credentials"},
		{"wrong current_password for a key", req{method: "POST", path: "/api/keys/", auth: u.bearer(),
			body: map[string]any{"name": "x", "current_password": "Wrong-pass-phrase-2"}}, "Wrong-pass-phrase-2", "wrong_password"},
		{"wrong current_password for a new password", req{method: "POST", path: "/api/me/password/", auth: u.bearer(),
			body: map[string]any{"current_password": "Wrong-pass-phrase-3", "new_password": "Brand-new-phrase-77"}}, "Wrong-pass-phrase-3", "wrong_password"},
		{"bad refresh token", req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": "not.a.refresh-token"}}, "not.a.refresh-token", "invalid"},
		{"reused refresh token", req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": spent}}, spent, "reused"},
		{"refresh token of a logged-out session", req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": loggedOut.refresh}}, loggedOut.refresh, "revoked"},
	}
	time.Sleep(time.Until(lapseAt) + 50*time.Millisecond)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.r)
			r.status(http.StatusUnauthorized)
			sent := decodeAs[apiError](r).Error.Message
			id := r.Header().Get("X-Request-ID")
			line, raw := accessLine(t, e.logBuf.String(), id)
			if line["level"] != "INFO" {
				t.Errorf("level = %v, want INFO", line["level"])
			}
			if line["status"] != float64(http.StatusUnauthorized) {
				t.Errorf("status = %v, want 401", line["status"])
			}
			if line["auth_reason"] != tt.reason {
				t.Errorf("auth_reason = %v, want %q", line["auth_reason"], tt.reason)
			}
			if line["auth_error"] != sent {
				t.Errorf("auth_error = %v, want the message the client got, %q", line["auth_error"], sent)
			}
			if tt.secret != "" && strings.Contains(raw, tt.secret) {
				t.Errorf("the log line holds the credential: %s", raw)
			}
		})
	}
}

// accessLine finds the access log line of the request with id.
func accessLine(t *testing.T, logs, id string) (map[string]any, string) {
	t.Helper()
	for _, raw := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", raw)
		}
		if rec["msg"] == "request" && rec["request_id"] == id {
			return rec, raw
		}
	}
	t.Fatalf("no access line with request_id %q in:\n%s", id, logs)
	return nil, ""
}

// TestRefusedRefreshSaysWhy: a refresh token refused at /api/token/refresh/
// says which case it is, as every 401 does, so a client knows a reused
// token ended its session and a logged-out one is gone for good.
func TestRefusedRefreshSaysWhy(t *testing.T) {
	e := newEnv(t, nil)
	reused := e.newUser()
	e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": reused.refresh}}).status(http.StatusOK)
	loggedOut := e.newUser()
	e.do(req{method: "POST", path: "/api/token/blacklist/", body: map[string]string{"refresh": loggedOut.refresh}}).status(http.StatusOK)

	for _, tt := range []struct{ name, refresh, message string }{
		{"reused", reused.refresh, "The refresh token was already used, so its session has been ended: sign in again."},
		{"logged out", loggedOut.refresh, "The token has been revoked: sign in again."},
		{"not a token", "not.a.token", "Given token not valid."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := e.do(req{method: "POST", path: "/api/token/refresh/", body: map[string]string{"refresh": tt.refresh}}).
				errorCode(http.StatusUnauthorized, "invalid_token")
			if got.Error.Message != tt.message {
				t.Fatalf("message = %q, want %q", got.Error.Message, tt.message)
			}
		})
	}
	// Bearer with nothing after it is a missing credential, not a foreign scheme.
	got := e.do(req{method: "GET", path: "/api/tasks/", auth: "Bearer"}).errorCode(http.StatusUnauthorized, "invalid_token")
	if !strings.HasPrefix(got.Error.Message, "The Authorization header has a scheme but no credential") {
		t.Fatalf("Bearer alone: message = %q", got.Error.Message)
	}
}
