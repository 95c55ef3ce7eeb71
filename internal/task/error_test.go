package task

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// wantCodeAndMessage checks the code and the sentence a client is given
// for err.
func wantCodeAndMessage(t *testing.T, err error, code, msg string) {
	t.Helper()
	if got := ErrorCode(err); got != code {
		t.Errorf("ErrorCode = %q, want %q", got, code)
	}
	if got := ErrorMessage(err); got != msg {
		t.Errorf("ErrorMessage = %q, want %q", got, msg)
	}
}

func TestErrorAccessors(t *testing.T) {
	internal := errors.New(`postgres: insert task: ERROR: relation "tasks" does not exist (SQLSTATE 42P01)`)
	field := FieldError("title", "Title must be at least 3 characters long.")
	tests := []struct {
		name       string
		err        error
		wantCode   string
		wantMsg    string
		wantFields map[string][]string
	}{
		{"task error", ErrNotFound, ENOTFOUND, "Not found.", nil},
		{"wrapped task error", fmt.Errorf("postgres: find task: %w", ErrNotFound), ENOTFOUND, "Not found.", nil},
		{"twice wrapped", fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrForbidden)), EFORBIDDEN,
			"You do not have permission to perform this action.", nil},
		{"joined with a plain error", errors.Join(internal, ErrPrecondition), EPRECONDITION,
			"The resource has changed since it was read.", nil},
		{"validation error", field, EINVALID, "Invalid input.",
			map[string][]string{"title": {"Title must be at least 3 characters long."}}},
		{"wrapped validation error", fmt.Errorf("httpapi: %w", field), EINVALID, "Invalid input.",
			map[string][]string{"title": {"Title must be at least 3 characters long."}}},
		{"validation error on several fields", Invalid(map[string][]string{"a": {"x", "y"}, "b": {"z"}}), EINVALID,
			"Invalid input.", map[string][]string{"a": {"x", "y"}, "b": {"z"}}},
		{"fields on a non-validation error", &Error{Code: ECONFLICT, Message: "Conflict.", Fields: map[string][]string{"x": {"y"}}},
			ECONFLICT, "Conflict.", nil},
		{"plain error", internal, EINTERNAL, "Internal server error.", nil},
		{"wrapped plain error", fmt.Errorf("x: %w", internal), EINTERNAL, "Internal server error.", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCodeAndMessage(t, tt.err, tt.wantCode, tt.wantMsg)
			got := ErrorFields(tt.err)
			if !maps.EqualFunc(got, tt.wantFields, slices.Equal) || (got == nil) != (tt.wantFields == nil) {
				t.Errorf("ErrorFields = %v, want %v", got, tt.wantFields)
			}
		})
	}
}

func TestErrorMessageHidesInternals(t *testing.T) {
	err := fmt.Errorf("postgres: connect: %w",
		errors.New("failed to connect to `user=app database=tasks`: /var/run/postgresql/.s.PGSQL.5432: password authentication failed"))
	msg := ErrorMessage(err)
	for _, leak := range []string{"postgres", "user=app", "/var/run", "password", "5432"} {
		if strings.Contains(msg, leak) {
			t.Errorf("ErrorMessage = %q, reveals %q", msg, leak)
		}
	}
	if ErrorFields(err) != nil {
		t.Errorf("ErrorFields of a plain error = %v, want nil", ErrorFields(err))
	}
}

func TestErrorf(t *testing.T) {
	err := Errorf(EINVALID, "Limit must be between %d and %d.", 1, 100)
	if err.Code != EINVALID {
		t.Errorf("Code = %q, want %q", err.Code, EINVALID)
	}
	if want := "Limit must be between 1 and 100."; err.Message != want {
		t.Errorf("Message = %q, want %q", err.Message, want)
	}
	if got := err.Error(); !strings.Contains(got, EINVALID) || !strings.Contains(got, err.Message) {
		t.Errorf("Error() = %q, want it to carry code and message", got)
	}
}

func TestCommonErrors(t *testing.T) {
	// Codes and wording clients see; 5xx bodies say only the generic sentence.
	tests := []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
	}{
		{"not found", ErrNotFound, ENOTFOUND, "Not found."},
		{"not authenticated", ErrNotAuthenticated, EUNAUTHORIZED, "Authentication credentials were not provided."},
		{"invalid token", ErrInvalidToken, EINVALIDTOKEN, "Given token not valid."},
		{"bad credentials", ErrBadCredentials, EAUTHFAILED, "No active account found with the given credentials."},
		{"forbidden", ErrForbidden, EFORBIDDEN, "You do not have permission to perform this action."},
		{"unavailable", ErrUnavailable, EUNAVAILABLE, "Service temporarily unavailable."},
		{"precondition", ErrPrecondition, EPRECONDITION, "The resource has changed since it was read."},
		// Reuse must look like any other bad token to the client.
		{"token reused", ErrTokenReused, EINVALIDTOKEN, "The refresh token was already used, so its session has been ended: sign in again."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCodeAndMessage(t, tt.err, tt.wantCode, tt.wantMsg) })
	}
	if errors.Is(ErrTokenReused, ErrInvalidToken) {
		t.Errorf("ErrTokenReused is ErrInvalidToken, want a distinct value so the store can signal reuse")
	}
}

// TestEveryRefusalHasAReason: the log counts 401s by reason, so each kind
// of refusal names its own.
func TestEveryRefusalHasAReason(t *testing.T) {
	refusals := []*Error{ErrNotAuthenticated, ErrInvalidToken, ErrBadCredentials, ErrWrongPassword, ErrSchemeUnknown,
		ErrTokenMalformed, ErrKeyMalformed, ErrTokenExpired, ErrTokenRevoked, ErrSessionEnded, ErrKeyInvalid,
		ErrJWTWrongScheme, ErrKeyWrongScheme, ErrTokenReused}
	seen := map[string]*Error{}
	for _, e := range refusals {
		if e.Reason == "" {
			t.Errorf("%q has no reason", e.Message)
		}
		if prev, dup := seen[e.Reason]; dup {
			t.Errorf("%q and %q share the reason %q", prev.Message, e.Message, e.Reason)
		}
		seen[e.Reason] = e
		if got := ErrorReason(fmt.Errorf("wrapped: %w", e)); got != e.Reason {
			t.Errorf("ErrorReason(wrapped %q) = %q, want %q", e.Message, got, e.Reason)
		}
	}
	if got := ErrorReason(ErrNotFound); got != "" {
		t.Errorf("ErrorReason(ErrNotFound) = %q, want none", got)
	}
}

// TestWithCause: an error with a cause still is, to clients and to
// errors.Is, the error it was made from; the cause is reachable for the
// log and never in the message.
func TestWithCause(t *testing.T) {
	cause := fmt.Errorf("postgres: find tasks: %w", context.DeadlineExceeded)
	err := fmt.Errorf("wrapped: %w", ErrUnavailable.WithCause(cause))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("errors.Is(err, ErrUnavailable) = false, want true")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, the cause's cause) = false, want true")
	}
	if errors.Is(err, errOtherUnavailable) {
		t.Errorf("errors.Is(err, another error) = true, want false")
	}
	if got := ErrorCode(err); got != EUNAVAILABLE {
		t.Errorf("ErrorCode = %q, want %q", got, EUNAVAILABLE)
	}
	if got := ErrorMessage(err); got != ErrUnavailable.Message {
		t.Errorf("ErrorMessage = %q, want %q", got, ErrUnavailable.Message)
	}
	if got := err.Error(); !strings.Contains(got, cause.Error()) {
		t.Errorf("Error() = %q, want the cause %q for the log", got, cause.Error())
	}
	if ErrUnavailable.Cause != nil {
		t.Errorf("WithCause changed the shared ErrUnavailable")
	}
	if errors.Is(ErrTokenReused.WithCause(cause), ErrInvalidToken) {
		t.Errorf("a reused token with a cause is ErrInvalidToken, want them distinct as without one")
	}
}

// errOtherUnavailable has the code of ErrUnavailable and another message.
var errOtherUnavailable = Errorf(EUNAVAILABLE, "Something else.")
