package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/task"
)

// TestEveryRouteDeclaresAPolicy walks the router: a route added without a
// policy would be reachable by anyone, so it fails the build instead.
func TestEveryRouteDeclaresAPolicy(t *testing.T) {
	e := newEnv(t, nil)
	// Deliberately outside the API group: probes, the public keys, the
	// authorization server's metadata and its pages' stylesheet and script.
	open := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /.well-known/jwks.json": true,
		"GET /.well-known/openid-configuration": true, "GET /.well-known/oauth-authorization-server": true,
		"GET /oauth/assets/style.css": true, "GET /oauth/assets/passkey.js": true}
	n := 0
	err := chi.Walk(e.srv.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		key := method + " " + strings.TrimSuffix(route, "/")
		if open[key] || method == http.MethodHead || strings.HasPrefix(route, "/docs") || strings.HasPrefix(route, "/openapi.") {
			return nil
		}
		n++
		if _, ok := e.srv.policies[key]; !ok {
			t.Errorf("route %s has no declared policy", key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("walked %d API routes, want every route of the contract (at least 20)", n)
	}
}

// TestPoliciesMatchTheContract pins who may call what.
func TestPoliciesMatchTheContract(t *testing.T) {
	e := newEnv(t, nil)
	want := map[string]string{
		"POST /api/register":          "public",
		"POST /api/token":             "public",
		"POST /api/token/refresh":     "public",
		"POST /api/logout/all":        "bearer",
		"GET /api/me":                 "bearer",
		"POST /api/keys":              "bearer",
		"GET /api/keys":               "bearer",
		"GET /api/tasks":              "scope tasks:read",
		"POST /api/tasks":             "scope tasks:write",
		"DELETE /api/tasks/{id}":      "scope tasks:write",
		"GET /api/admin/users":        "admin",
		"PATCH /api/admin/users/{id}": "admin",
		"GET /api/admin/audit":        "admin",
		"GET /api/me/events":          "bearer",
	}
	for route, name := range want {
		if got := e.srv.policies[route].name; got != name {
			t.Errorf("policy of %s = %q, want %q", route, got, name)
		}
	}
}

// TestUndeclaredPolicyDenies: the zero policy lets nobody in, not even an
// administrator's token.
func TestUndeclaredPolicyDenies(t *testing.T) {
	s := &Server{}
	r := httptest.NewRequest("GET", "/api/anything", nil)
	r = r.WithContext(task.NewContextWithIdentity(r.Context(), &task.Identity{UserID: uuid.New(), Scheme: task.SchemeBearer}))
	if got := task.ErrorCode(s.authorize(r, policy{})); got != task.EFORBIDDEN {
		t.Fatalf("zero policy: code = %q, want %q", got, task.EFORBIDDEN)
	}
}
