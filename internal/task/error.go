// Package task holds the domain of taskmanager: tasks, users, sessions, API
// keys, the errors every layer speaks, and the request identity. It imports
// nothing internal, so every other package can depend on it.
package task

import (
	"errors"
	"fmt"
)

// Error codes. They are the public codes of the contract's error table; the
// HTTP layer maps each to one status.
const (
	EBADREQUEST   = "bad_request"
	EMALFORMED    = "malformed_json"
	EINVALID      = "validation_failed"
	EUNAUTHORIZED = "not_authenticated"
	EINVALIDTOKEN = "invalid_token"
	EAUTHFAILED   = "authentication_failed"
	EMFAREQUIRED  = "mfa_required"
	EFORBIDDEN    = "permission_denied"
	ENOTFOUND     = "not_found"
	EMETHOD       = "method_not_allowed"
	ECONFLICT     = "conflict"
	EQUOTA        = "quota_exceeded"
	EPRECONDITION = "precondition_failed"
	ETOOLARGE     = "payload_too_large"
	EMEDIATYPE    = "unsupported_media_type"
	EIDEMPOTENCY  = "idempotency_key_reused"
	ETHROTTLED    = "throttled"
	EINTERNAL     = "internal_error"
	EUNAVAILABLE  = "service_unavailable"
)

// Error is a failure a client may see. Message is a sentence safe to send;
// Fields carries per-field messages on validation errors. Reason, on a
// refused credential, is a short word for the log ("expired", "revoked"):
// the message is for people, the reason for counting and alerting. Cause
// is the internal failure behind the answer (the database is down behind
// a 503): the log names it under the request id, the client never sees it.
type Error struct {
	Code    string
	Message string
	Fields  map[string][]string
	Reason  string
	Cause   error
	// MFA, on EMFAREQUIRED at login, is how to finish signing in.
	MFA *MFAChallenge
}

// Error is the cause's text when there is one: that is what the log needs;
// the code and message are in the answer.
func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Cause.Error()
	}
	return fmt.Sprintf("task: %s: %s", e.Code, e.Message)
}

// Unwrap returns the cause, so errors.Is and errors.As see through to it.
func (e *Error) Unwrap() error { return e.Cause }

// Is makes an error with a cause match the error it was made from by
// WithCause: a cause changes what the log says, not what the error means.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && e.Cause != nil && t.Cause == nil &&
		t.Code == e.Code && t.Message == e.Message && t.Reason == e.Reason
}

// WithCause returns a copy of e that carries cause, the internal failure
// behind it.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// Errorf returns an Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation error: fields maps each input that breaks
// a rule to the sentences that say which. It is the one constructor of
// EINVALID, so every validation error reads the same.
func Invalid(fields map[string][]string) *Error {
	return &Error{Code: EINVALID, Message: "Invalid input.", Fields: fields}
}

// FieldError returns a validation error for a single field.
func FieldError(field, message string) *Error {
	return Invalid(map[string][]string{field: {message}})
}

// ErrorCode returns the code of err, or EINTERNAL for anything that is not
// an *Error: an unknown failure is never described to a client.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal server error."
}

// ErrorReason returns why a credential was refused, or "" when err is not
// such a refusal.
func ErrorReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// refusal is a 401's error: its code, the reason the log names and the
// sentence the client reads.
func refusal(code, reason, message string) *Error {
	return &Error{Code: code, Message: message, Reason: reason}
}

// ErrorFields returns the per-field messages of a validation error, or nil.
func ErrorFields(err error) map[string][]string {
	var e *Error
	if errors.As(err, &e) && e.Code == EINVALID {
		return e.Fields
	}
	return nil
}

// Common errors with fixed wording, so equal situations read the same.
var (
	ErrNotFound         = Errorf(ENOTFOUND, "Not found.")
	ErrNotAuthenticated = refusal(EUNAUTHORIZED, "missing", "Authentication credentials were not provided.")
	ErrInvalidToken     = refusal(EINVALIDTOKEN, "invalid", "Given token not valid.")
	ErrBadCredentials   = refusal(EAUTHFAILED, "bad_credentials", "No active account found with the given credentials.")
	ErrWrongPassword    = refusal(EAUTHFAILED, "wrong_password", "Your current password was entered incorrectly.")
	ErrForbidden        = Errorf(EFORBIDDEN, "You do not have permission to perform this action.")
	ErrUnavailable      = Errorf(EUNAVAILABLE, "Service temporarily unavailable.") // the contract: 503 bodies say only this
	ErrPrecondition     = Errorf(EPRECONDITION, "The resource has changed since it was read.")
	ErrQuotaExceeded    = Errorf(EQUOTA, "You have reached the limit of stored objects of this kind; delete some first.")
	ErrThrottled        = Errorf(ETHROTTLED, "Request was throttled.")
	// ErrTwoCredentials: with two Authorization headers, which one counts
	// depends on who reads them (a proxy, a framework, us); refuse to guess.
	ErrTwoCredentials = Errorf(EBADREQUEST, "Send one Authorization header, not several.")
)

// Why a credential was refused. Each is invalid_token to the client, with a
// message that tells it what to do (the contract's 401 rule).
var (
	ErrSchemeUnknown  = refusal(EINVALIDTOKEN, "unknown_scheme", "Unsupported authorization scheme: send Authorization: Bearer <access token>, Api-Key <key> or Token <key>.")
	ErrCredentialGone = refusal(EINVALIDTOKEN, "empty_credential", "The Authorization header has a scheme but no credential after it: send Authorization: Bearer <access token>, Api-Key <key> or Token <key>.")
	ErrRefreshExpired = refusal(EINVALIDTOKEN, "expired", "The refresh token has expired: sign in again.")
	ErrTokenMalformed = refusal(EINVALIDTOKEN, "malformed_token", "The access token is malformed: it is not a JWT.")
	ErrKeyMalformed   = refusal(EINVALIDTOKEN, "malformed_key", "The API key is malformed: send it exactly as POST /api/keys/ returned it.")
	ErrTokenExpired   = refusal(EINVALIDTOKEN, "expired", "The access token has expired: refresh it or sign in again.")
	ErrTokenRevoked   = refusal(EINVALIDTOKEN, "revoked", "The token has been revoked: sign in again.")
	ErrSessionEnded   = refusal(EINVALIDTOKEN, "session_ended", "The session has reached its maximum age: sign in again.")
	ErrKeyInvalid     = refusal(EINVALIDTOKEN, "unknown_key", "The API key is not valid: it does not exist, was revoked or has expired.")
	ErrJWTWrongScheme = refusal(EINVALIDTOKEN, "jwt_wrong_scheme", "This is a JWT access token: send it as Authorization: Bearer <token>.")
	ErrKeyWrongScheme = refusal(EINVALIDTOKEN, "key_wrong_scheme", "This is an API key: send it as Authorization: Api-Key <key> or Token <key>.")
)
