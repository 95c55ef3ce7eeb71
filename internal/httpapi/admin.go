package httpapi

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/task"
)

type adminUserJSON struct {
	ID         uuid.UUID `json:"id"`
	Username   string    `json:"username"`
	Email      string    `json:"email"`
	IsAdmin    bool      `json:"is_admin"`
	IsActive   bool      `json:"is_active"`
	DateJoined time.Time `json:"date_joined"`
}

func adminUserResponse(u *task.User) adminUserJSON {
	return adminUserJSON{ID: u.ID, Username: u.Username, Email: u.Email, IsAdmin: u.IsAdmin,
		IsActive: u.IsActive, DateJoined: u.DateJoined.UTC()}
}

// handleUserList handles GET /api/admin/users/.
func (s *Server) handleUserList(w http.ResponseWriter, r *http.Request) {
	limit, cur, err := pageParams(r.URL.Query())
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := s.deps.Users.FindUsers(r.Context(), limit, cur)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, pageOf(s, r, page, adminUserResponse))
}

type userUpdateRequest struct {
	IsActive *bool `json:"is_active"`
	IsAdmin  *bool `json:"is_admin"`
}

// valid accepts any combination: each flag is optional, and an empty
// request changes nothing.
func (req *userUpdateRequest) valid() error { return nil }

// handleUserUpdate handles PATCH /api/admin/users/{id}/. Deactivation
// revokes every session and key of the user at once. The store serialises
// admin changes and re-reads the acting admin's rights, so two admins
// demoting each other cannot leave none.
func (s *Server) handleUserUpdate(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var req userUpdateRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	actor := task.IdentityFromContext(r.Context()).UserID
	if id == actor && (req.IsActive != nil && !*req.IsActive || req.IsAdmin != nil && !*req.IsAdmin) {
		// An administrator locking themselves out is almost always a mistake.
		s.error(w, r, task.Errorf(task.ECONFLICT, "You cannot deactivate or demote your own account."))
		return
	}
	u, err := s.deps.Users.UpdateUser(r.Context(), actor, id, task.UserUpdate{IsActive: req.IsActive, IsAdmin: req.IsAdmin})
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "user_updated", "target_user_id", u.ID.String(), "is_active", u.IsActive, "is_admin", u.IsAdmin)
	s.encode(w, http.StatusOK, adminUserResponse(u))
}
