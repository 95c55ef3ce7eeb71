package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/task"
)

// handleAuditList handles GET /api/admin/audit/: the security events of
// every user, newest first, filtered by user (id or username), event and
// time.
func (s *Server) handleAuditList(w http.ResponseWriter, r *http.Request) {
	f, err := auditFilter(r.URL.Query(), true)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.auditPage(w, r, f)
}

// handleMyEvents handles GET /api/me/events/: the caller's own security
// history (logins with time and address, password changes, keys, sessions
// ended), filtered by event and time like the audit log.
func (s *Server) handleMyEvents(w http.ResponseWriter, r *http.Request) {
	f, err := auditFilter(r.URL.Query(), false)
	if err != nil {
		s.error(w, r, err)
		return
	}
	f.UserID = task.IdentityFromContext(r.Context()).UserID
	s.auditPage(w, r, f)
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, f task.AuditFilter) {
	if s.deps.Audit == nil {
		s.error(w, r, task.ErrUnavailable)
		return
	}
	page, err := s.deps.Audit.Find(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, pageOf(s, r, page, auditResponse))
}

// auditFilter reads the query of an audit list; ?user= only when byUser.
// Bad values are field errors.
func auditFilter(q url.Values, byUser bool) (task.AuditFilter, error) {
	var f task.AuditFilter
	var errs []error
	var err error
	if f.Limit, err = pageLimit(q); err != nil {
		errs = append(errs, err)
	}
	if f.Cursor, err = task.DecodeCursor(q.Get("cursor"), ""); err != nil {
		return f, err
	}
	if v := q.Get("user"); byUser && v != "" {
		if id, err := uuid.Parse(v); err == nil {
			f.UserID = id
		} else if utf8.RuneCountInString(v) > 150 || !utf8.ValidString(v) {
			errs = append(errs, task.FieldError("user", "Must be a user id or a username."))
		} else {
			f.Username = v
		}
	}
	if v := q.Get("event"); v != "" {
		if !slices.Contains(securityEvents, v) {
			errs = append(errs, task.FieldError("event", "Unknown event."))
		}
		f.Event = v
	}
	for _, p := range []struct {
		name string
		into *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, task.FieldError(p.name, "Must be a time in RFC 3339, e.g. 2026-01-02T15:04:05Z."))
			}
			*p.into = t
		}
	}
	return f, merge(errs...)
}
