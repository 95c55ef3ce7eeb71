package httpapi

import (
	"context"
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
	RevokeAPIKeys   *bool   `json:"revoke_api_keys"`
	stepUp
}

// valid checks that both passwords are there; the new one is checked
// against the policy once the current one has proved who the user is.
func (req *passwordChangeRequest) valid() error { return merge(check(req), req.onlyOne()) }

func (req *passwordChangeRequest) currentPassword() string { return *req.CurrentPassword }

// handlePasswordChange handles POST /api/me/password/. Every other session
// of the user is revoked, and their API keys unless revoke_api_keys is
// false; the session making the change stays.
func (s *Server) handlePasswordChange(w http.ResponseWriter, r *http.Request) {
	id := task.IdentityFromContext(r.Context())
	var req passwordChangeRequest
	u, err := s.decodeReauthenticated(w, r, &req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := passwordProblems("new_password", *req.NewPassword, u.Username); err != nil {
		s.error(w, r, err)
		return
	}
	hash, err := s.hash(r.Context(), *req.NewPassword)
	if err != nil {
		s.error(w, r, err)
		return
	}
	revokeKeys := req.RevokeAPIKeys == nil || *req.RevokeAPIKeys
	if err := s.deps.Users.SetPassword(r.Context(), u.ID, hash, id.SessionID, revokeKeys); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "password_changed", "api_keys_revoked", revokeKeys)
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
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

// handleSessionList handles GET /api/sessions/: the user's live sessions,
// newest first, paginated like tasks.
func (s *Server) handleSessionList(w http.ResponseWriter, r *http.Request) {
	id := task.IdentityFromContext(r.Context())
	limit, cur, err := pageParams(r.URL.Query())
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := s.deps.Sessions.FindSessions(r.Context(), id.UserID, limit, cur)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, pageOf(s, r, page, func(x *task.Session) sessionJSON {
		return sessionJSON{ID: x.ID, CreatedAt: x.CreatedAt.UTC(), LastUsedAt: x.LastUsedAt.UTC(), ExpiresAt: x.ExpiresAt.UTC(),
			UserAgent: x.UserAgent, IP: x.IP, Current: x.ID == id.SessionID}
	}))
}

// handleSessionDelete handles DELETE /api/sessions/{id}/.
func (s *Server) handleSessionDelete(w http.ResponseWriter, r *http.Request) {
	s.revokeOwn(w, r, s.deps.Sessions.RevokeSession, "session_revoked", "session_id", "reason", "deleted")
}

// revokeOwn answers a DELETE of one of the caller's sessions or keys: it
// revokes the id in the path for the caller, logs event with the id under
// idKey followed by args, and answers 204.
func (s *Server) revokeOwn(w http.ResponseWriter, r *http.Request, revoke func(ctx context.Context, userID, id uuid.UUID) error,
	event, idKey string, args ...any) {
	id, err := pathID(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := revoke(r.Context(), task.IdentityFromContext(r.Context()).UserID, id); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, event, append([]any{idKey, id.String()}, args...)...)
	w.WriteHeader(http.StatusNoContent)
}
