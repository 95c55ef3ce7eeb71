package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

type statusJSON struct {
	Status string `json:"status"`
}

// handleHealth handles GET /healthz: the process is up.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.encode(w, http.StatusOK, statusJSON{"ok"})
}

// handleReady handles GET /readyz: the database answers.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	// The answer is shared with other probes, so one that hangs up must not
	// cancel the check for them.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
	defer cancel()
	if err := s.ready.check(ctx, s.deps.Ping); err != nil {
		if task.ErrorCode(err) != task.EUNAVAILABLE {
			err = task.ErrUnavailable.WithCause(err)
		}
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, statusJSON{"ok"})
}

// handleJWKS handles GET /.well-known/jwks.json: the public keys that
// verify tokens, for clients and gateways that check them themselves.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	s.encode(w, http.StatusOK, struct {
		Keys []auth.JWK `json:"keys"`
	}{s.tokens.PublicKeys()})
}
