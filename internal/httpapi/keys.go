package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

type keyJSON struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Key        string     `json:"key,omitempty"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// utc is t in UTC, as the wire writes times; nil stays nil.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func keyResponse(k *task.APIKey) keyJSON {
	return keyJSON{ID: k.ID, Name: k.Name, Prefix: auth.KeyMarker + k.Prefix, Scopes: k.Scopes,
		CreatedAt: k.CreatedAt.UTC(), ExpiresAt: utc(k.ExpiresAt), LastUsedAt: utc(k.LastUsedAt)}
}

type keyRequest struct {
	Name            *string   `json:"name" validate:"required,max=100"`
	CurrentPassword *string   `json:"current_password" validate:"required"`
	Scopes          *[]string `json:"scopes" validate:"omitnil,min=1,max=2,unique,dive,oneof=tasks:read tasks:write"`
	ExpiresAt       *string   `json:"expires_at"`
	stepUp

	// now, defaultTTL and maxTTL are set before decoding: expires_at is
	// read against them. valid sets expires.
	now                time.Time
	defaultTTL, maxTTL time.Duration
	expires            time.Time
}

// valid trims the name and reads expires_at.
func (req *keyRequest) valid() error {
	req.Name = trimName(req.Name)
	var expErr error
	req.expires, expErr = req.expiry()
	return merge(check(req), expErr, req.onlyOne())
}

func (req *keyRequest) currentPassword() string { return *req.CurrentPassword }

// trimName trims a credential's name; all blanks is no name.
func trimName(name *string) *string {
	if name == nil {
		return nil
	}
	if t := strings.TrimSpace(*name); t != "" {
		return &t
	}
	return nil
}

// expiry reads expires_at: defaultTTL ahead when absent, never more than
// maxTTL ahead. Every key expires.
func (req *keyRequest) expiry() (time.Time, error) {
	if req.ExpiresAt == nil {
		return req.now.Add(req.defaultTTL).UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, *req.ExpiresAt)
	switch {
	case err != nil:
		return time.Time{}, task.FieldError("expires_at", "Must be an RFC 3339 date-time such as 2030-01-31T12:00:00Z.")
	case !t.After(req.now):
		return time.Time{}, task.FieldError("expires_at", "Must be in the future.")
	case t.After(req.now.Add(req.maxTTL)):
		return time.Time{}, task.FieldError("expires_at",
			fmt.Sprintf("Must be at most %d days ahead.", int(req.maxTTL.Hours()/24)))
	}
	return t.UTC(), nil
}

// handleKeyCreate handles POST /api/keys/. The key is in this answer and
// nowhere else: only its hash is stored. A key outlives every session, so
// minting one takes the password, not just a (possibly stolen) token.
func (s *Server) handleKeyCreate(w http.ResponseWriter, r *http.Request) {
	req := keyRequest{now: s.now(), defaultTTL: s.cfg.APIKeyDefaultTTL, maxTTL: s.cfg.APIKeyMaxTTL}
	u, err := s.decodeReauthenticated(w, r, &req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	scopes := slices.Clone(task.AllScopes)
	if req.Scopes != nil {
		scopes = *req.Scopes
		slices.Sort(scopes)
	}
	secret, prefix, hash, err := auth.NewAPIKey()
	if err != nil {
		s.error(w, r, err)
		return
	}
	k := &task.APIKey{UserID: u.ID, Name: *req.Name, Prefix: prefix, Hash: hash, Scopes: scopes, ExpiresAt: &req.expires}
	if err := s.deps.Keys.CreateKey(r.Context(), k); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "key_created", "key_id", k.ID.String(), "scopes", strings.Join(scopes, " "))
	out := keyResponse(k)
	out.Key = secret
	s.encode(w, http.StatusCreated, out)
}

// handleKeyList handles GET /api/keys/: the user's keys, newest first,
// paginated like tasks.
func (s *Server) handleKeyList(w http.ResponseWriter, r *http.Request) {
	limit, cur, err := pageParams(r.URL.Query())
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := s.deps.Keys.FindKeys(r.Context(), task.IdentityFromContext(r.Context()).UserID, limit, cur)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, pageOf(s, r, page, keyResponse))
}

// handleKeyDelete handles DELETE /api/keys/{id}/.
func (s *Server) handleKeyDelete(w http.ResponseWriter, r *http.Request) {
	s.revokeOwn(w, r, s.deps.Keys.RevokeKey, "key_revoked", "key_id")
}
