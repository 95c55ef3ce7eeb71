package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

type oauthClientJSON struct {
	ID           uuid.UUID `json:"id"`
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret,omitempty"`
	Name         string    `json:"name"`
	RedirectURIs []string  `json:"redirect_uris"`
	GrantTypes   []string  `json:"grant_types"`
	Scopes       []string  `json:"scopes"`
	Confidential bool      `json:"confidential"`
	CreatedAt    time.Time `json:"created_at"`
}

func oauthClientResponse(c *task.OAuthClient) oauthClientJSON {
	return oauthClientJSON{ID: c.ID, ClientID: c.ClientID, Name: c.Name, RedirectURIs: c.RedirectURIs,
		GrantTypes: c.GrantTypes, Scopes: c.Scopes, Confidential: c.Confidential(), CreatedAt: c.CreatedAt.UTC()}
}

type oauthClientRequest struct {
	Name         *string   `json:"name" validate:"required,max=100"`
	RedirectURIs *[]string `json:"redirect_uris" validate:"omitnil,max=10,unique,dive,max=2000"`
	GrantTypes   *[]string `json:"grant_types" validate:"required,min=1,max=3,unique,dive,oneof=authorization_code refresh_token client_credentials"`
	Scopes       *[]string `json:"scopes" validate:"required,min=1,max=6,unique,dive,oneof=tasks:read tasks:write openid profile email offline_access"`
	Confidential *bool     `json:"confidential"`
}

// valid checks the fields, then how they fit together (task.CheckOAuthClient).
func (req *oauthClientRequest) valid() error {
	if req.Name != nil {
		*req.Name = strings.TrimSpace(*req.Name)
		if *req.Name == "" {
			req.Name = nil
		}
	}
	if err := check(req); err != nil {
		return err
	}
	return task.CheckOAuthClient(deref(req.RedirectURIs), *req.GrantTypes, req.Confidential == nil || *req.Confidential)
}

// handleClientCreate handles POST /api/admin/oauth/clients/. The secret
// of a confidential client is in this answer and nowhere else.
func (s *Server) handleClientCreate(w http.ResponseWriter, r *http.Request) {
	var req oauthClientRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	c := &task.OAuthClient{Name: *req.Name, RedirectURIs: deref(req.RedirectURIs), GrantTypes: *req.GrantTypes, Scopes: *req.Scopes}
	if c.RedirectURIs == nil {
		c.RedirectURIs = []string{}
	}
	secret := auth.NewOAuthClient(c, req.Confidential == nil || *req.Confidential)
	if err := s.deps.OAuth.CreateClient(r.Context(), c); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "oauth_client_created", "client_id", c.ClientID)
	out := oauthClientResponse(c)
	out.ClientSecret = secret
	w.Header().Set("Location", s.absoluteURL(r, "", "/api/admin/oauth/clients/"+c.ID.String()+"/", ""))
	s.encode(w, http.StatusCreated, out)
}

// handleClientList handles GET /api/admin/oauth/clients/.
func (s *Server) handleClientList(w http.ResponseWriter, r *http.Request) {
	limit, cur, err := pageParams(r.URL.Query())
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := s.deps.OAuth.FindClients(r.Context(), limit, cur)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, pageOf(s, r, page, oauthClientResponse))
}

// handleClientDelete handles DELETE /api/admin/oauth/clients/{id}/ (the
// id, or the client_id): every token it was issued dies at once.
func (s *Server) handleClientDelete(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		c, ferr := s.deps.OAuth.FindClientByClientID(r.Context(), chi.URLParam(r, "id"))
		if ferr != nil || len(chi.URLParam(r, "id")) > 100 {
			s.error(w, r, task.ErrNotFound)
			return
		}
		id = c.ID
	}
	if err := s.deps.OAuth.DeleteClient(r.Context(), id); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "oauth_client_deleted", "oauth_client", id.String())
	w.WriteHeader(http.StatusNoContent)
}

type consentJSON struct {
	ClientID  string    `json:"client_id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
}

// handleAuthorizationList handles GET /api/me/authorizations/: the
// applications the user let act for them, and with which scopes.
func (s *Server) handleAuthorizationList(w http.ResponseWriter, r *http.Request) {
	list, err := s.deps.OAuth.FindConsents(r.Context(), task.IdentityFromContext(r.Context()).UserID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := pageJSON[consentJSON]{Results: make([]consentJSON, 0, len(list))}
	for _, c := range list {
		out.Results = append(out.Results, consentJSON{ClientID: c.ClientID, Name: c.ClientName, Scopes: c.Scopes,
			CreatedAt: c.CreatedAt.UTC()})
	}
	s.encode(w, http.StatusOK, out)
}

// handleAuthorizationDelete handles DELETE /api/me/authorizations/ (every
// application) and /api/me/authorizations/{id}/ (one, by client_id): the
// consent is forgotten and the application's tokens for the user die.
func (s *Server) handleAuthorizationDelete(w http.ResponseWriter, r *http.Request) {
	clientID := chi.URLParam(r, "id") // empty on the collection: every application
	if len(clientID) > 100 {
		s.error(w, r, task.ErrNotFound)
		return
	}
	if err := s.deps.OAuth.WithdrawConsent(r.Context(), task.IdentityFromContext(r.Context()).UserID, clientID); err != nil {
		s.error(w, r, err)
		return
	}
	if clientID == "" {
		s.securityEvent(r, "oauth_consent_withdrawn", "all_clients", true)
	} else {
		s.securityEvent(r, "oauth_consent_withdrawn", "client_id", clientID)
	}
	w.WriteHeader(http.StatusNoContent)
}
