package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func mustUUID(t testing.TB, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newKey creates an API key for u with scopes and returns the secret.
func (e *testEnv) newKey(u *user, scopes ...string) string {
	e.t.Helper()
	k := decodeAs[keyJSON](e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(),
		body: map[string]any{"name": "test key", "scopes": scopes, "current_password": u.password}}).status(http.StatusCreated))
	return k.Key
}

func TestAPIKeyLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	created := e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(), body: map[string]any{"name": "ci", "current_password": u.password}}).status(http.StatusCreated)
	k := decodeAs[keyJSON](created)
	if !strings.HasPrefix(k.Key, "tm_") || !strings.HasPrefix(k.Key, k.Prefix) {
		t.Fatalf("key %q must start with tm_ and its prefix %q", k.Key, k.Prefix)
	}
	if strings.Join(k.Scopes, " ") != "tasks:read tasks:write" || k.ExpiresAt == nil {
		t.Fatalf("defaults: scopes %v expires_at %v", k.Scopes, k.ExpiresAt)
	}
	list := e.do(req{method: "GET", path: "/api/keys/", auth: u.bearer()}).status(http.StatusOK)
	if strings.Contains(list.Body.String(), k.Key) {
		t.Fatal("the key list must not contain the secret")
	}

	for _, scheme := range []string{"Api-Key", "Token"} {
		e.do(req{method: "GET", path: "/api/tasks/", auth: scheme + " " + k.Key}).status(http.StatusOK)
	}
	made := decodeAs[taskJSON](e.do(req{method: "POST", path: "/api/tasks/", auth: "Token " + k.Key,
		body: map[string]any{"title": "Made with a key"}}).status(http.StatusCreated))
	if made.CreatedBy.String() != u.id {
		t.Fatalf("created_by = %s, want the key's owner %s", made.CreatedBy, u.id)
	}

	// A key cannot manage keys.
	e.do(req{method: "POST", path: "/api/keys/", auth: "Api-Key " + k.Key, body: map[string]any{"name": "minted", "current_password": u.password}}).errorCode(http.StatusForbidden, "permission_denied")
	e.do(req{method: "GET", path: "/api/keys/", auth: "Api-Key " + k.Key}).errorCode(http.StatusForbidden, "permission_denied")

	other := e.newUser()
	e.do(req{method: "DELETE", path: "/api/keys/" + k.ID.String() + "/", auth: other.bearer()}).errorCode(http.StatusNotFound, "not_found")
	e.do(req{method: "DELETE", path: "/api/keys/" + k.ID.String() + "/", auth: u.bearer()}).status(http.StatusNoContent)
	for _, scheme := range []string{"Api-Key", "Token"} {
		e.do(req{method: "GET", path: "/api/tasks/", auth: scheme + " " + k.Key}).errorCode(http.StatusUnauthorized, "invalid_token")
	}
}

func TestReadOnlyKeyCannotWrite(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	tk := decodeAs[taskJSON](e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": "Read only target"}}).status(http.StatusCreated))
	key := "Api-Key " + e.newKey(u, "tasks:read")
	e.do(req{method: "GET", path: "/api/tasks/" + tk.ID.String() + "/", auth: key}).status(http.StatusOK)
	for _, r := range []req{
		{method: "POST", path: "/api/tasks/", body: map[string]any{"title": "Should not exist"}},
		{method: "PATCH", path: "/api/tasks/" + tk.ID.String() + "/", body: map[string]any{"title": "Changed"}},
		{method: "PUT", path: "/api/tasks/" + tk.ID.String() + "/", body: map[string]any{"title": "Changed"}},
		{method: "DELETE", path: "/api/tasks/" + tk.ID.String() + "/"},
	} {
		r.auth = key
		e.do(r).errorCode(http.StatusForbidden, "permission_denied")
	}
	page := decodeAs[pageJSON[taskJSON]](e.do(req{method: "GET", path: "/api/tasks/", auth: u.bearer()}))
	if len(page.Results) != 1 || page.Results[0].Title != "Read only target" {
		t.Fatalf("a read-only key changed data: %+v", page.Results)
	}
}

func TestInvalidKeysAre401(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	key := e.newKey(u, "tasks:read")
	tampered := key[:len(key)-4] + "AAAA"
	if tampered == key {
		tampered = key[:len(key)-4] + "BBBB"
	}
	for _, cred := range []string{"Api-Key " + tampered, "Token " + tampered, "Api-Key tm_nope", "Token ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer " + key} {
		e.do(req{method: "GET", path: "/api/tasks/", auth: cred}).errorCode(http.StatusUnauthorized, "invalid_token")
	}
}

func TestKeyInputValidation(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"unknown scope", map[string]any{"name": "x", "scopes": []string{"tasks:admin"}}, "scopes"},
		{"no scopes", map[string]any{"name": "x", "scopes": []string{}}, "scopes"},
		{"missing name", map[string]any{"scopes": []string{"tasks:read"}}, "name"},
		{"blank name", map[string]any{"name": "   "}, "name"},
		{"long name", map[string]any{"name": strings.Repeat("n", 101)}, "name"},
		{"expiry in the past", map[string]any{"name": "x", "expires_at": past}, "expires_at"},
		{"expiry not a date", map[string]any{"name": "x", "expires_at": "tomorrow"}, "expires_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.body["current_password"] = u.password
			e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(), body: tt.body}).fieldError(tt.field)
		})
	}
	when := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	k := decodeAs[keyJSON](e.do(req{method: "POST", path: "/api/keys/", auth: u.bearer(),
		body: map[string]any{"name": "expiring", "current_password": u.password, "expires_at": when.Format(time.RFC3339)}}).status(http.StatusCreated))
	if k.ExpiresAt == nil || !k.ExpiresAt.Equal(when) {
		t.Fatalf("expires_at = %v, want %v", k.ExpiresAt, when)
	}
}
