package httpapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/acme/taskmanager/internal/task"
)

// routes lists every route and the middleware in front of them. Each API
// route declares its policy; a route without one cannot be registered.
// Every answer is throttled, 404s and 405s included, except the probes:
// a load balancer polls them from one address, and /readyz shares one
// database ping between callers.
func (s *Server) routes() {
	r := s.router
	r.Use(s.limitHeaders, middleware.StripSlashes, s.requestID, s.accessLog, s.recoverer, s.securityHeaders,
		s.checkHost, s.redirectToHTTPS, s.cors(), middleware.GetHead)
	throttled := func(h http.Handler) http.Handler { return s.authenticate(s.throttle.middleware(s)(h)) }
	r.NotFound(throttled(s.noStore(http.HandlerFunc(s.handleNotFound))).ServeHTTP)
	r.MethodNotAllowed(throttled(s.noStore(http.HandlerFunc(s.handleMethodNotAllowed))).ServeHTTP)

	r.Get("/healthz", s.handleHealth)
	r.Get("/readyz", s.handleReady)
	r.Group(func(r chi.Router) {
		r.Use(throttled)
		r.Get("/.well-known/jwks.json", s.handleJWKS)
		if s.cfg.DocsEnabled {
			newDocs().routes(r)
		}
	})

	r.Group(func(r chi.Router) {
		r.Use(s.noStore, throttled)

		s.handle(r, "POST /api/register", public, s.handleRegister)
		s.handle(r, "POST /api/token", public, s.handleTokenObtain)
		s.handle(r, "POST /api/token/refresh", public, s.handleTokenRefresh)
		s.handle(r, "POST /api/token/verify", public, s.handleTokenVerify)
		s.handle(r, "POST /api/token/blacklist", public, s.handleTokenBlacklist)

		s.handle(r, "POST /api/logout/all", bearer, s.handleLogoutAll)
		s.handle(r, "GET /api/me", bearer, s.handleMe)
		s.handle(r, "POST /api/me/password", bearer, s.handlePasswordChange)
		s.handle(r, "GET /api/sessions", bearer, s.handleSessionList)
		s.handle(r, "DELETE /api/sessions/{id}", bearer, s.handleSessionDelete)

		s.handle(r, "GET /api/keys", bearer, s.handleKeyList)
		s.handle(r, "POST /api/keys", bearer, s.handleKeyCreate)
		s.handle(r, "DELETE /api/keys/{id}", bearer, s.handleKeyDelete)

		s.handle(r, "GET /api/tasks", scoped(task.ScopeTasksRead), s.handleTaskList)
		s.handle(r, "POST /api/tasks", scoped(task.ScopeTasksWrite), s.handleTaskCreate)
		s.handle(r, "GET /api/tasks/{id}", scoped(task.ScopeTasksRead), s.handleTaskGet)
		s.handle(r, "PUT /api/tasks/{id}", scoped(task.ScopeTasksWrite), s.handleTaskReplace)
		s.handle(r, "PATCH /api/tasks/{id}", scoped(task.ScopeTasksWrite), s.handleTaskUpdate)
		s.handle(r, "DELETE /api/tasks/{id}", scoped(task.ScopeTasksWrite), s.handleTaskDelete)

		s.handle(r, "GET /api/admin/users", admin, s.handleUserList)
		s.handle(r, "PATCH /api/admin/users/{id}", admin, s.handleUserUpdate)
	})
}

// handle registers h for "METHOD /pattern" behind its policy.
func (s *Server) handle(r chi.Router, route string, p policy, h http.HandlerFunc) {
	method, pattern, _ := strings.Cut(route, " ")
	s.policies[method+" "+pattern] = p
	r.With(s.enforce(p)).Method(method, pattern, h)
}
