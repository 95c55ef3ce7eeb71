package httpapi

import (
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

func keyResponse(k *task.APIKey) keyJSON {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	return keyJSON{ID: k.ID, Name: k.Name, Prefix: auth.KeyMarker + k.Prefix, Scopes: k.Scopes,
		CreatedAt: k.CreatedAt.UTC(), ExpiresAt: utc(k.ExpiresAt), LastUsedAt: utc(k.LastUsedAt)}
}

type keyRequest struct {
	Name      *string   `json:"name" validate:"required,max=100"`
	Scopes    *[]string `json:"scopes" validate:"omitnil,min=1,max=2,unique,dive,oneof=tasks:read tasks:write"`
	ExpiresAt *string   `json:"expires_at"`
}

// handleKeyCreate handles POST /api/keys/. The key is in this answer and
// nowhere else: only its hash is stored.
func (s *Server) handleKeyCreate(w http.ResponseWriter, r *http.Request) {
	var req keyRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if req.Name != nil {
		*req.Name = strings.TrimSpace(*req.Name)
		if *req.Name == "" {
			req.Name = nil
		}
	}
	expires, expErr := parseExpiry(req.ExpiresAt, s.now())
	if err := merge(check(&req), expErr); err != nil {
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
	k := &task.APIKey{UserID: task.IdentityFromContext(r.Context()).UserID, Name: *req.Name, Prefix: prefix,
		Hash: hash, Scopes: scopes, ExpiresAt: expires}
	if err := s.deps.Keys.CreateKey(r.Context(), k); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "key_created", "key_id", k.ID.String(), "scopes", strings.Join(scopes, " "))
	out := keyResponse(k)
	out.Key = secret
	s.encode(w, http.StatusCreated, out)
}

func parseExpiry(s *string, now time.Time) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return nil, task.FieldError("expires_at", "Must be an RFC 3339 date-time such as 2030-01-31T12:00:00Z.")
	}
	if !t.After(now) {
		return nil, task.FieldError("expires_at", "Must be in the future.")
	}
	t = t.UTC()
	return &t, nil
}

// handleKeyList handles GET /api/keys/.
func (s *Server) handleKeyList(w http.ResponseWriter, r *http.Request) {
	keys, err := s.deps.Keys.FindKeys(r.Context(), task.IdentityFromContext(r.Context()).UserID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := listJSON[keyJSON]{Results: make([]keyJSON, 0, len(keys))}
	for _, k := range keys {
		out.Results = append(out.Results, keyResponse(k))
	}
	s.encode(w, http.StatusOK, out)
}

// handleKeyDelete handles DELETE /api/keys/{id}/.
func (s *Server) handleKeyDelete(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.deps.Keys.RevokeKey(r.Context(), task.IdentityFromContext(r.Context()).UserID, id); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "key_revoked", "key_id", id.String())
	w.WriteHeader(http.StatusNoContent)
}
