package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/task"
)

func levelFor(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

// securityEvents lists every event securityEvent is called with (the
// contract's list, and the audit trail's kinds): the counter of each starts
// at 0, and ?event= of the audit log accepts only these.
var securityEvents = []string{
	"user_registered", "login_succeeded", "login_failed", "current_password_failed",
	"token_reuse_detected", "session_revoked", "password_changed", "key_created", "key_revoked",
	"throttled", "permission_denied", "user_updated",
	"oauth_client_created", "oauth_client_deleted", "oauth_consent_granted", "oauth_consent_withdrawn", "csrf_refused",
	"mfa_enrolled", "mfa_removed", "mfa_reset", "recovery_code_used", "recovery_codes_regenerated", "second_factor_failed",
}

// subjectKeys name, in order, the argument of securityEvent that says
// whom an event is about when that is not the caller: the stored event
// belongs to that user (a failed login to the account tried, a reused
// refresh token to its owner, an admin's change to the account changed).
var subjectKeys = []string{"subject", "target_user_id", "new_user_id"}

// securityEvent records an event of the security trail, with who and
// where but never a credential: a log line, the security_events_total
// counter and a row of the audit trail, all from this one call. args are
// slog key-value pairs of ids, names and flags.
func (s *Server) securityEvent(r *http.Request, event string, args ...any) {
	ri := info(r.Context())
	attrs := append([]any{"event", event, "client_ip", ri.clientIP, "user_id", ri.userID}, args...)
	s.log.InfoContext(r.Context(), "security", attrs...)
	s.deps.Metrics.SecurityEvent(event)
	if s.deps.Audit == nil {
		return
	}
	e := task.AuditEvent{Time: s.now(), Event: event, ClientIP: ri.clientIP, RequestID: ri.id, TraceID: ri.traceID}
	e.UserID, _ = uuid.Parse(ri.userID)
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		if e.Detail == nil {
			e.Detail = make(map[string]any, len(args)/2)
		}
		switch v := args[i+1].(type) {
		case string, bool, int:
			e.Detail[k] = v
		default:
			e.Detail[k] = fmt.Sprint(v)
		}
	}
	for _, k := range subjectKeys {
		if id, ok := e.Detail[k].(string); ok {
			if u, err := uuid.Parse(id); err == nil {
				if e.UserID != uuid.Nil && e.UserID != u {
					e.Detail["actor_user_id"] = e.UserID.String()
				}
				e.UserID = u
				break
			}
		}
	}
	s.deps.Audit.Record(e) // never waits: a full queue drops the event and counts it
}

// requestLog adds the request id, and the trace id of an incoming W3C
// traceparent, to every line logged with a request's context, so each line
// of a request can be found by either.
type requestLog struct{ slog.Handler }

func (h requestLog) Handle(ctx context.Context, rec slog.Record) error {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		if ri.traceID != "" {
			rec.AddAttrs(slog.String("request_id", ri.id), slog.String("trace_id", ri.traceID))
		} else {
			rec.AddAttrs(slog.String("request_id", ri.id))
		}
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestLog{h.Handler.WithAttrs(attrs)}
}

func (h requestLog) WithGroup(name string) slog.Handler { return requestLog{h.Handler.WithGroup(name)} }

// auditJSON is one event of the audit trail, as both lists answer it.
type auditJSON struct {
	ID        uuid.UUID      `json:"id"`
	Time      time.Time      `json:"time"`
	Event     string         `json:"event"`
	UserID    *uuid.UUID     `json:"user_id"`
	Username  *string        `json:"username"`
	ClientIP  string         `json:"client_ip"`
	RequestID string         `json:"request_id"`
	TraceID   string         `json:"trace_id,omitempty"`
	Detail    map[string]any `json:"detail"`
}

func auditResponse(e *task.AuditEvent) auditJSON {
	j := auditJSON{ID: e.ID, Time: e.Time.UTC(), Event: e.Event, ClientIP: e.ClientIP, RequestID: e.RequestID,
		TraceID: e.TraceID, Detail: e.Detail}
	if e.UserID != uuid.Nil {
		id := e.UserID
		j.UserID = &id
	}
	if e.Username != "" {
		name := e.Username
		j.Username = &name
	}
	if j.Detail == nil {
		j.Detail = map[string]any{}
	}
	return j
}
