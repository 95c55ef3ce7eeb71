package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/acme/taskmanager/internal/task"
)

// statusByCode maps every domain error code to its one HTTP status.
var statusByCode = map[string]int{
	task.EBADREQUEST:   http.StatusBadRequest,
	task.EMALFORMED:    http.StatusBadRequest,
	task.EINVALID:      http.StatusBadRequest,
	task.EUNAUTHORIZED: http.StatusUnauthorized,
	task.EINVALIDTOKEN: http.StatusUnauthorized,
	task.EAUTHFAILED:   http.StatusUnauthorized,
	task.EMFAREQUIRED:  http.StatusUnauthorized,
	task.EFORBIDDEN:    http.StatusForbidden,
	task.ENOTFOUND:     http.StatusNotFound,
	task.EMETHOD:       http.StatusMethodNotAllowed,
	task.ECONFLICT:     http.StatusConflict,
	task.EQUOTA:        http.StatusConflict,
	task.EPRECONDITION: http.StatusPreconditionFailed,
	task.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	task.EMEDIATYPE:    http.StatusUnsupportedMediaType,
	task.EIDEMPOTENCY:  http.StatusUnprocessableEntity,
	task.ETHROTTLED:    http.StatusTooManyRequests,
	task.EINTERNAL:     http.StatusInternalServerError,
	task.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// retryUnavailable is the Retry-After of a 503, in seconds: a database
// restart or a query over budget is usually over by then.
const retryUnavailable = 5

// statusClientClosed is logged when the client disconnected before the answer.
const statusClientClosed = 499

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string              `json:"code"`
	Message   string              `json:"message"`
	Fields    map[string][]string `json:"fields,omitempty"`
	RequestID string              `json:"request_id"`
	MFA       *task.MFAChallenge  `json:"mfa,omitempty"`
}

// error writes err as the contract's error body. It is the only place that
// turns an error into a status; internals go to the log under the same
// request id, never to the client.
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	code := task.ErrorCode(err)
	ri := info(r.Context())
	if r.Context().Err() != nil {
		// The client went away: nothing failed on our side and nobody
		// reads the answer. 499 is nginx's name for it in access logs.
		s.log.InfoContext(r.Context(), "client closed the request")
		w.WriteHeader(statusClientClosed)
		return
	}
	switch code {
	case task.EINTERNAL:
		s.log.ErrorContext(r.Context(), "request failed", "err", err.Error())
	case task.EUNAVAILABLE:
		s.log.WarnContext(r.Context(), "dependency unavailable", "err", err.Error())
		s.ready.forget()
	}
	status := statusByCode[code]
	switch status {
	case http.StatusUnauthorized:
		// The access log says why, whichever check refused: a credential in
		// the header, none at all, a password or a refresh token in the body.
		ri.authErr = err
		v := `Bearer realm="api"`
		if code == task.EINVALIDTOKEN {
			// RFC 6750 3: our messages use only the characters it allows.
			v += `, error="invalid_token", error_description="` + task.ErrorMessage(err) + `"`
		}
		if code == task.EMFAREQUIRED {
			// RFC 9470 3: the token is good, the way the user signed in is not enough.
			v += `, error="insufficient_user_authentication", error_description="` + task.ErrorMessage(err) + `"`
		}
		w.Header().Set("WWW-Authenticate", v)
	case http.StatusTooManyRequests:
		var rf refusal
		if errors.As(err, &rf) {
			rf.headers(w)
		}
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(retryUnavailable))
	}
	s.encode(w, status, errorBody{errorDetail{
		Code:      code,
		Message:   task.ErrorMessage(err),
		Fields:    task.ErrorFields(err),
		RequestID: ri.id,
		MFA:       task.ErrorMFA(err),
	}})
}

// handleNotFound answers unknown routes.
func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.error(w, r, task.ErrNotFound)
}

// handleMethodNotAllowed answers a known route called with another method,
// listing the methods it has.
func (s *Server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	path := routePath(r)
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if s.router.Match(chi.NewRouteContext(), m, path) {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 && allow[0] == http.MethodGet && (len(allow) == 1 || allow[1] != http.MethodHead) {
		allow = append([]string{http.MethodGet, http.MethodHead}, allow[1:]...)
	}
	for _, m := range allow {
		w.Header().Add("Allow", m)
	}
	s.error(w, r, task.Errorf(task.EMETHOD, "Method %q not allowed.", r.Method))
}

// routePath is the route pattern chi matched, or the path when none did.
func routePath(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
		return rctx.RoutePath
	}
	return strings.TrimSuffix(r.URL.Path, "/")
}
