package httpapi

import (
	"log/slog"
	"net/http"
)

func levelFor(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

// securityEvent logs an event of the security trail as its own line, with
// who and where but never a credential.
func (s *Server) securityEvent(r *http.Request, event string, args ...any) {
	ri := info(r.Context())
	attrs := append([]any{"event", event, "request_id", ri.id, "client_ip", ri.clientIP, "user_id", ri.userID}, args...)
	s.log.InfoContext(r.Context(), "security", attrs...)
}
