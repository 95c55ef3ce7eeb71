package httpapi

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/task"
)

// policy says who may call a route. Deny is the zero value: a route must
// name its callers to be reachable at all.
type policy struct {
	name      string
	anonymous bool   // no credential needed
	keys      bool   // API keys accepted (else Bearer tokens only)
	oauth     bool   // OAuth access tokens acting for a user accepted
	scope     string // scope the credential must hold
	admin     bool   // the user must be an administrator
}

var (
	public = policy{name: "public", anonymous: true}
	bearer = policy{name: "bearer"}
	admin  = policy{name: "admin", admin: true}
)

// scoped lets any credential of the user in, API keys and OAuth access
// tokens included, if it holds scope.
func scoped(scope string) policy {
	return policy{name: "scope " + scope, keys: true, oauth: true, scope: scope}
}

// enforce applies p after authentication and throttling have run.
func (s *Server) enforce(p policy) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := s.authorize(r, p); err != nil {
				if task.ErrorCode(err) == task.EFORBIDDEN {
					s.securityEvent(r, "permission_denied", "policy", p.name)
				}
				s.error(w, r, err)
				return
			}
			// A key is marked used only by a request it was allowed to
			// make: a refused one changes nothing stored.
			if id := task.IdentityFromContext(r.Context()); id != nil && id.KeyID != uuid.Nil {
				if err := s.deps.Keys.TouchKey(r.Context(), id.KeyID); err != nil {
					s.error(w, r, err)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (s *Server) authorize(r *http.Request, p policy) error {
	if p.anonymous {
		return nil
	}
	if p.name == "" {
		return task.ErrForbidden
	}
	id := task.IdentityFromContext(r.Context())
	if id == nil {
		if err := authError(r.Context()); err != nil {
			return err
		}
		return task.ErrNotAuthenticated
	}
	if id.Scheme == task.SchemeAPIKey && !p.keys {
		return task.Errorf(task.EFORBIDDEN, "API keys cannot be used here; sign in with a token.")
	}
	if id.Scheme == task.SchemeOAuth && !p.oauth {
		return task.Errorf(task.EFORBIDDEN, "OAuth access tokens work only on /api/tasks/; sign in with a token.")
	}
	if id.Scheme == task.SchemeOAuth && id.UserID == uuid.Nil {
		return task.Errorf(task.EFORBIDDEN, "A client acting for itself cannot reach a user's data.")
	}
	if p.scope != "" && !id.HasScope(p.scope) {
		return task.Errorf(task.EFORBIDDEN, "This credential lacks the %s scope.", p.scope)
	}
	if p.admin {
		// Read the flag fresh: a demoted admin loses access at once.
		u, err := s.deps.Users.FindUserByID(r.Context(), id.UserID)
		if task.ErrorCode(err) == task.ENOTFOUND {
			return task.ErrInvalidToken
		}
		if err != nil {
			return err
		}
		if !u.IsAdmin {
			return task.ErrForbidden
		}
	}
	return nil
}
