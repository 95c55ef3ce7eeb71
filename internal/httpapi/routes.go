package httpapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/acme/taskmanager/internal/task"
)

// routes lists every route and the middleware in front of them. Each API
// route declares its policy and its rate budget; a route without either
// cannot be registered. Every answer is throttled, 404s and 405s included,
// except the probes: a load balancer polls them from one address, and
// /readyz shares one database ping between callers.
func (s *Server) routes() {
	r := s.router
	r.Use(s.limitHeaders, middleware.StripSlashes, s.requestID, s.accessLog, s.recoverer, s.securityHeaders,
		s.checkHost, s.redirectToHTTPS, s.cors(), middleware.GetHead)
	general := func(h http.HandlerFunc) http.HandlerFunc {
		return s.authenticate(s.limit(generalRate)(s.noStore(h))).ServeHTTP
	}
	r.NotFound(general(s.handleNotFound))
	r.MethodNotAllowed(general(s.handleMethodNotAllowed))

	r.Get("/healthz", s.handleHealth)
	r.Get("/readyz", s.handleReady)
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate, s.limit(generalRate))
		r.Get("/.well-known/jwks.json", s.handleJWKS)
		r.Get("/.well-known/openid-configuration", s.oauthOn(s.handleDiscovery))
		r.Get("/.well-known/oauth-authorization-server", s.oauthOn(s.handleDiscovery))
		r.Get("/oauth/assets/style.css", s.handleStyle)
		r.Get("/oauth/assets/passkey.js", s.handlePasskeyScript)
		if s.cfg.DocsEnabled {
			newDocs().routes(r)
		}
	})

	r.Group(func(r chi.Router) {
		r.Use(s.noStore, s.authenticate)

		s.handle(r, "POST /api/register", public, registerRate, s.handleRegister)
		s.handle(r, "POST /api/token", public, loginRate, s.handleTokenObtain)
		s.handle(r, "POST /api/token/mfa", public, loginRate, s.handleTokenMFA)
		s.handle(r, "POST /api/token/passkey/begin", public, loginRate, s.passkeysOn(s.handlePasskeySignInBegin))
		s.handle(r, "POST /api/token/passkey/finish", public, loginRate, s.passkeysOn(s.handlePasskeySignIn))
		s.handle(r, "POST /api/token/refresh", public, tokenRate, s.handleTokenRefresh)
		s.handle(r, "POST /api/token/verify", public, tokenRate, s.handleTokenVerify)
		s.handle(r, "POST /api/token/blacklist", public, tokenRate, s.handleTokenBlacklist)

		s.handle(r, "POST /api/logout/all", bearer, generalRate, s.handleLogoutAll)
		s.handle(r, "GET /api/me", bearer, generalRate, s.handleMe)
		s.handle(r, "POST /api/me/password", bearer, generalRate, s.handlePasswordChange)
		s.handle(r, "GET /api/sessions", bearer, generalRate, s.handleSessionList)
		s.handle(r, "DELETE /api/sessions/{id}", bearer, generalRate, s.handleSessionDelete)
		s.handle(r, "GET /api/me/events", bearer, generalRate, s.handleMyEvents)
		s.handle(r, "POST /api/me/mfa/totp", bearer, generalRate, s.handleTOTPStart)
		s.handle(r, "POST /api/me/mfa/totp/confirm", bearer, generalRate, s.handleTOTPConfirm)
		s.handle(r, "DELETE /api/me/mfa/totp", bearer, generalRate, s.handleTOTPDelete)
		s.handle(r, "POST /api/me/mfa/recovery-codes", bearer, generalRate, s.handleRecoveryCodes)
		s.handle(r, "POST /api/me/passkeys/begin", bearer, generalRate, s.passkeysOn(s.handlePasskeyBegin))
		s.handle(r, "POST /api/me/passkeys/finish", bearer, generalRate, s.passkeysOn(s.handlePasskeyFinish))
		s.handle(r, "GET /api/me/passkeys", bearer, generalRate, s.handlePasskeyList)
		s.handle(r, "DELETE /api/me/passkeys/{id}", bearer, generalRate, s.handlePasskeyDelete)

		s.handle(r, "GET /api/keys", bearer, generalRate, s.handleKeyList)
		s.handle(r, "POST /api/keys", bearer, keyCreateRate, s.handleKeyCreate)
		s.handle(r, "DELETE /api/keys/{id}", bearer, generalRate, s.handleKeyDelete)

		s.handle(r, "GET /api/tasks", scoped(task.ScopeTasksRead), generalRate, s.handleTaskList)
		s.handle(r, "POST /api/tasks", scoped(task.ScopeTasksWrite), generalRate, s.handleTaskCreate)
		s.handle(r, "GET /api/tasks/{id}", scoped(task.ScopeTasksRead), generalRate, s.handleTaskGet)
		s.handle(r, "PUT /api/tasks/{id}", scoped(task.ScopeTasksWrite), generalRate, s.handleTaskReplace)
		s.handle(r, "PATCH /api/tasks/{id}", scoped(task.ScopeTasksWrite), generalRate, s.handleTaskUpdate)
		s.handle(r, "DELETE /api/tasks/{id}", scoped(task.ScopeTasksWrite), generalRate, s.handleTaskDelete)

		s.handle(r, "GET /api/admin/users", admin, generalRate, s.handleUserList)
		s.handle(r, "PATCH /api/admin/users/{id}", admin, generalRate, s.handleUserUpdate)
		s.handle(r, "DELETE /api/admin/users/{id}/mfa", admin, generalRate, s.handleUserMFAReset)
		s.handle(r, "GET /api/admin/audit", admin, generalRate, s.handleAuditList)

		s.handle(r, "GET /api/admin/oauth/clients", admin, generalRate, s.handleClientList)
		s.handle(r, "POST /api/admin/oauth/clients", admin, generalRate, s.handleClientCreate)
		s.handle(r, "DELETE /api/admin/oauth/clients/{id}", admin, generalRate, s.handleClientDelete)

		s.handle(r, "GET /api/me/authorizations", bearer, generalRate, s.handleAuthorizationList)
		s.handle(r, "DELETE /api/me/authorizations", bearer, generalRate, s.handleAuthorizationDelete)
		s.handle(r, "DELETE /api/me/authorizations/{id}", bearer, generalRate, s.handleAuthorizationDelete)

		// The authorization server (oauth.go, oauthpages.go): the library's
		// end points behind our checks; the sign-in and consent pages count
		// against the login limits as POST /api/token/ does. oauthOn: off
		// (404) without an OAuth signing key.
		s.handle(r, "GET /oauth/authorize", public, generalRate, s.oauthOn(s.handleAuthorize))
		s.handle(r, "GET /oauth/login", public, generalRate, s.oauthOn(s.handleLoginPage))
		s.handle(r, "POST /oauth/login", public, loginRate, s.oauthOn(s.handleLogin))
		s.handle(r, "POST /oauth/consent", public, loginRate, s.oauthOn(s.handleConsent))
		s.handle(r, "POST /oauth/token", public, tokenRate, s.oauthOn(s.serveOAuthJSON))
		s.handle(r, "POST /oauth/introspect", public, tokenRate, s.oauthOn(s.serveOAuthJSON))
		s.handle(r, "POST /oauth/revoke", public, tokenRate, s.oauthOn(s.serveOAuthJSON))
		s.handle(r, "GET /oauth/userinfo", public, generalRate, s.oauthOn(s.serveOAuthJSON))
		s.handle(r, "POST /oauth/userinfo", public, generalRate, s.oauthOn(s.serveOAuthJSON))
	})
}

// handle registers h for "METHOD /pattern" behind its rate budget and its
// policy, in that order: throttling runs before the policy, so an anonymous
// flood on a protected route gets 401s and then 429s.
func (s *Server) handle(r chi.Router, route string, p policy, rt rate, h http.HandlerFunc) {
	method, pattern, _ := strings.Cut(route, " ")
	s.policies[route] = p
	s.rates[route] = rt
	r.With(s.limit(rt), s.enforce(p)).Method(method, pattern, h)
}
