// Package httpapi is the HTTP face of taskmanager: routes, middleware,
// handlers and the one error writer. It speaks to storage only through the
// domain interfaces of package task.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/acme/taskmanager/internal/audit"
	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/metrics"
	"github.com/acme/taskmanager/internal/passkey"
	"github.com/acme/taskmanager/internal/ratelimit"
	"github.com/acme/taskmanager/internal/task"
)

// Deps are the collaborators a Server needs, built by serve (and by the
// tests the same way). Every field is required but Secrets, Passkeys, Metrics
// and Audit.
type Deps struct {
	Tokens      *auth.Tokens // issues and verifies JWTs (built from TokenConfig)
	Hasher      *auth.Hasher // hashes and checks passwords
	Tasks       task.TaskStore
	Users       task.UserStore
	Sessions    task.SessionStore
	Keys        task.KeyStore
	Revocations task.Revocations
	OAuth       task.OAuthStore
	MFA         task.MFAStore
	// Secrets seals TOTP secrets at rest; nil (no MFA_ENCRYPTION_KEY in
	// production) turns enrollment off.
	Secrets *auth.SecretBox
	// Passkeys is the WebAuthn relying party; nil turns passkeys off (503).
	Passkeys *passkey.RP
	// Ping reports whether the database answers (for /readyz).
	Ping func(context.Context) error
	// RateStore makes the counter stores of the limiters (ratelimit.Connect,
	// or ratelimit.LocalStores).
	RateStore ratelimit.Stores
	// Now is the clock sessions are timed by.
	Now func() time.Time

	// Metrics, when set, is fed by the request path; nil records nothing.
	Metrics *metrics.Metrics
	// Audit, when set, stores every security event and answers the audit
	// lists; nil keeps the events in the log alone (and the lists answer
	// 503).
	Audit *audit.Trail
}

// Server is the HTTP handler of the API.
type Server struct {
	cfg      Config
	log      *slog.Logger
	deps     Deps
	hasher   *auth.Hasher
	tokens   *auth.Tokens
	throttle *throttle
	router   *chi.Mux
	policies map[string]policy // "METHOD /pattern" -> who may call it, for the route audit
	rates    map[string]rate   // "METHOD /pattern" -> the budget it spends, for the route audit
	now      func() time.Time

	// unknownKeys remembers API key prefixes that matched no usable key, so
	// a flood of made-up keys does not become a flood of queries. A miss
	// stays a miss: prefixes are random and a revoked or expired key never
	// comes back.
	unknownKeys *recent[struct{}]
	// knownKeys remembers the hashes of keys that worked lately, by prefix:
	// checking one costs the client's anonymous budget nothing.
	knownKeys *recent[[]byte]
	ready     readiness
	oauth     *oauthServer
}

// NewServer builds the handler from cfg and deps.
func NewServer(cfg Config, log *slog.Logger, deps Deps) *Server {
	s := &Server{
		cfg:      cfg,
		log:      slog.New(requestLog{log.Handler()}),
		deps:     deps,
		hasher:   deps.Hasher,
		tokens:   deps.Tokens,
		throttle: newThrottle(cfg.Rates, deps.RateStore, deps.Metrics),
		router:   chi.NewRouter(),
		policies: map[string]policy{},
		rates:    map[string]rate{},
		now:      deps.Now,

		unknownKeys: newRecent[struct{}](10000, time.Minute),
		knownKeys:   newRecent[[]byte](10000, time.Minute),
		ready:       readiness{keep: 500 * time.Millisecond},
	}
	deps.Metrics.KnownSecurityEvents(securityEvents...)
	s.oauth = newOAuthServer(s)
	s.routes()
	return s
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}
