package httpapi

import (
	"context"
	"net/http"
	"time"

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
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.Ping(ctx); err != nil {
		if task.ErrorCode(err) != task.EUNAVAILABLE {
			err = &wrapped{task.ErrUnavailable, err}
		}
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, statusJSON{"ok"})
}

// wrapped gives cause the client-facing meaning of public.
type wrapped struct {
	public *task.Error
	cause  error
}

func (e *wrapped) Error() string   { return e.cause.Error() }
func (e *wrapped) Unwrap() []error { return []error{e.public, e.cause} }
