package httpapi

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/task"
)

// handleMe handles GET /api/me/.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	u, err := s.deps.Users.FindUserByID(r.Context(), task.IdentityFromContext(r.Context()).UserID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, userResponse(u))
}

type passwordChangeRequest struct {
	CurrentPassword *string `json:"current_password" validate:"required"`
	NewPassword     *string `json:"new_password" validate:"required"`
}

// handlePasswordChange handles POST /api/me/password/. Every other session
// of the user is revoked; the one making the change stays.
func (s *Server) handlePasswordChange(w http.ResponseWriter, r *http.Request) {
	id := task.IdentityFromContext(r.Context())
	var req passwordChangeRequest
	if err := s.decodeValid(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.deps.Users.FindUserByID(r.Context(), id.UserID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	ok, err := s.verifyPassword(r.Context(), u.PasswordHash, *req.CurrentPassword)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var wrong error
	if !ok {
		s.securityEvent(r, "password_change_failed")
		wrong = task.FieldError("current_password", "Your current password was entered incorrectly.")
	}
	if err := merge(wrong, passwordProblems("new_password", *req.NewPassword, u.Username)); err != nil {
		s.error(w, r, err)
		return
	}
	hash, err := s.hash(r.Context(), *req.NewPassword)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.deps.Users.SetPassword(r.Context(), u.ID, hash, id.SessionID); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "password_changed")
	w.WriteHeader(http.StatusNoContent)
}

// handleLogoutAll handles POST /api/logout/all/.
func (s *Server) handleLogoutAll(w http.ResponseWriter, r *http.Request) {
	id := task.IdentityFromContext(r.Context())
	if err := s.deps.Sessions.RevokeSessions(r.Context(), id.UserID, uuid.Nil); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "session_revoked", "reason", "logout_all")
	w.WriteHeader(http.StatusNoContent)
}

type sessionJSON struct {
	ID         uuid.UUID `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

type listJSON[T any] struct {
	Results []T `json:"results"`
}

// handleSessionList handles GET /api/sessions/.
func (s *Server) handleSessionList(w http.ResponseWriter, r *http.Request) {
	id := task.IdentityFromContext(r.Context())
	sessions, err := s.deps.Sessions.FindSessions(r.Context(), id.UserID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := listJSON[sessionJSON]{Results: make([]sessionJSON, 0, len(sessions))}
	for _, x := range sessions {
		out.Results = append(out.Results, sessionJSON{ID: x.ID, CreatedAt: x.CreatedAt.UTC(), LastUsedAt: x.LastUsedAt.UTC(),
			UserAgent: x.UserAgent, IP: x.IP, Current: x.ID == id.SessionID})
	}
	s.encode(w, http.StatusOK, out)
}

// handleSessionDelete handles DELETE /api/sessions/{id}/.
func (s *Server) handleSessionDelete(w http.ResponseWriter, r *http.Request) {
	sid, err := pathID(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.deps.Sessions.RevokeSession(r.Context(), task.IdentityFromContext(r.Context()).UserID, sid); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "session_revoked", "session_id", sid.String(), "reason", "deleted")
	w.WriteHeader(http.StatusNoContent)
}
