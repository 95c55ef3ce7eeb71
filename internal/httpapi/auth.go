package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

type userJSON struct {
	ID         uuid.UUID `json:"id"`
	Username   string    `json:"username"`
	Email      string    `json:"email"`
	IsAdmin    bool      `json:"is_admin"`
	DateJoined time.Time `json:"date_joined"`
}

func userResponse(u *task.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Email: u.Email, IsAdmin: u.IsAdmin, DateJoined: u.DateJoined.UTC()}
}

type registerRequest struct {
	Username *string `json:"username" validate:"required,max=150,username"`
	Password *string `json:"password" validate:"required"`
	Email    *string `json:"email" validate:"omitempty,max=254,email"`
}

// handleRegister handles POST /api/register/.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.RegistrationEnabled {
		s.error(w, r, task.ErrNotFound)
		return
	}
	var req registerRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if err := merge(check(&req), passwordProblems("password", deref(req.Password), deref(req.Username))); err != nil {
		s.error(w, r, err)
		return
	}
	u := &task.User{Username: *req.Username, Email: strings.TrimSpace(deref(req.Email))}
	var err error
	if u.PasswordHash, err = s.hash(r.Context(), *req.Password); err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.deps.Users.CreateUser(r.Context(), u); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "user_registered", "new_user_id", u.ID.String())
	s.encode(w, http.StatusCreated, userResponse(u))
}

func passwordProblems(field, password, username string) error {
	if password == "" {
		return nil // "required" reports it
	}
	if problems := auth.CheckPassword(password, username); len(problems) > 0 {
		return &task.Error{Code: task.EINVALID, Message: "Invalid input.", Fields: map[string][]string{field: problems}}
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// hashWait bounds how long a request queues for a hashing slot before it
// is turned away: under a login flood, fast 503s beat a growing queue.
const hashWait = 2 * time.Second

func (s *Server) hash(ctx context.Context, password string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, hashWait)
	defer cancel()
	h, err := s.hasher.Hash(ctx, password)
	return h, hashError(err)
}

func (s *Server) verifyPassword(ctx context.Context, hash, password string) (bool, error) {
	if len(password) > 4*auth.MaxPasswordLen {
		return false, nil // cannot be a stored password; not worth a hash
	}
	ctx, cancel := context.WithTimeout(ctx, hashWait)
	defer cancel()
	ok, err := s.hasher.Verify(ctx, hash, password)
	return ok, hashError(err)
}

func hashError(err error) error {
	if errors.Is(err, auth.ErrBusy) {
		return task.ErrUnavailable
	}
	return err
}

type credentials struct {
	Username *string `json:"username" validate:"required,max=150"`
	Password *string `json:"password" validate:"required"`
}

type tokenPairJSON struct {
	Access    string `json:"access"`
	Refresh   string `json:"refresh"`
	TokenType string `json:"token_type"`
	ExpiresIn int    `json:"expires_in"`
}

// handleTokenObtain handles POST /api/token/: a login, which opens a session.
func (s *Server) handleTokenObtain(w http.ResponseWriter, r *http.Request) {
	var req credentials
	if err := s.decodeValid(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.login(w, r, *req.Username, *req.Password)
	if err != nil {
		s.error(w, r, err)
		return
	}
	sess := &task.Session{ID: uuid.New(), UserID: u.ID, UserAgent: truncate(r.UserAgent(), 256), IP: info(r.Context()).clientIP}
	access, refresh, refreshExp, err := s.issuePair(u.ID, sess.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.deps.Sessions.CreateSession(r.Context(), sess, auth.HashToken(refresh), refreshExp); err != nil {
		s.error(w, r, err)
		return
	}
	info(r.Context()).userID = u.ID.String()
	s.securityEvent(r, "login_succeeded", "session_id", sess.ID.String())
	s.encode(w, http.StatusOK, tokenPairJSON{Access: access, Refresh: refresh, TokenType: "Bearer",
		ExpiresIn: int(s.tokens.TTL(auth.Access).Seconds())})
}

// issuePair signs a new access token and refresh token for a session.
func (s *Server) issuePair(userID, sessionID uuid.UUID) (access, refresh string, refreshExp time.Time, err error) {
	now := s.now()
	if refresh, refreshExp, err = s.tokens.Issue(auth.Refresh, userID, sessionID, now); err != nil {
		return "", "", time.Time{}, err
	}
	access, _, err = s.tokens.Issue(auth.Access, userID, sessionID, now)
	return access, refresh, refreshExp, err
}

// login checks a username and password. Unknown users, wrong passwords and
// inactive users get the same error after the same hashing work. Each
// attempt is counted against the username before the password is checked,
// so racing guesses cannot slip past the budget; a success is refunded, so
// only failures use it up.
func (s *Server) login(w http.ResponseWriter, r *http.Request, username, password string) (*task.User, error) {
	ctx := r.Context()
	key := strings.ToLower(strings.TrimSpace(username))
	lim := s.throttle.loginUser
	attempt, err := lim.Take(ctx, key)
	if err != nil {
		return nil, err
	}
	if !attempt.Allowed {
		setRateHeaders(w, attempt, []string{policyField(lim)}, []string{stateField(lim, attempt)})
		s.securityEvent(r, "throttled", "policy", lim.Name)
		return nil, task.Errorf(task.ETHROTTLED, "Request was throttled.")
	}
	u, err := s.deps.Users.FindUserByUsername(ctx, username)
	if err != nil && task.ErrorCode(err) != task.ENOTFOUND {
		return nil, err
	}
	var hash string
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := s.verifyPassword(ctx, hash, password)
	if err != nil {
		return nil, err
	}
	if !ok || !u.IsActive {
		s.securityEvent(r, "login_failed")
		return nil, task.ErrBadCredentials
	}
	_ = lim.Refund(ctx, key, attempt) // a store failure must not fail a good login
	return u, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

type refreshRequest struct {
	Refresh *string `json:"refresh" validate:"required"`
}

type tokenRefreshJSON struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

// handleTokenRefresh handles POST /api/token/refresh/: rotation. The old
// refresh token is consumed; presenting it again kills its session.
func (s *Server) handleTokenRefresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := s.decodeValid(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	old, err := s.tokens.Verify(auth.Refresh, *req.Refresh)
	if err != nil {
		s.error(w, r, task.ErrInvalidToken)
		return
	}
	access, refresh, refreshExp, err := s.issuePair(old.UserID, old.SessionID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	_, err = s.deps.Sessions.RotateRefreshToken(r.Context(), auth.HashToken(*req.Refresh), auth.HashToken(refresh), refreshExp)
	if errors.Is(err, task.ErrTokenReused) {
		s.securityEvent(r, "token_reuse_detected", "session_id", old.SessionID.String(), "subject", old.UserID.String())
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, tokenRefreshJSON{Access: access, Refresh: refresh})
}

type verifyRequest struct {
	Token *string `json:"token" validate:"required"`
}

// handleTokenVerify handles POST /api/token/verify/. Like simplejwt it
// takes either kind of token; either must belong to a live session.
func (s *Server) handleTokenVerify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if err := s.decodeValid(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.verifyToken(r.Context(), *req.Token); err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, struct{}{})
}

// verifyToken accepts a live access token, or a refresh token that is
// still the current one of its session: revocation memory covers only an
// access token's lifetime, so refresh tokens are checked in the database.
func (s *Server) verifyToken(ctx context.Context, raw string) error {
	if tok, err := s.tokens.Verify(auth.Access, raw); err == nil {
		revoked, err := s.deps.Revocations.IsRevoked(ctx, tok.SessionID)
		if err != nil {
			return err
		}
		if revoked {
			return task.ErrInvalidToken
		}
		return nil
	}
	if _, err := s.tokens.Verify(auth.Refresh, raw); err != nil {
		return task.ErrInvalidToken
	}
	return s.deps.Sessions.CheckRefreshToken(ctx, auth.HashToken(raw))
}

// handleTokenBlacklist handles POST /api/token/blacklist/: logout of the
// refresh token's session, access tokens included.
func (s *Server) handleTokenBlacklist(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := s.decodeValid(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if _, err := s.tokens.Verify(auth.Refresh, *req.Refresh); err != nil {
		s.error(w, r, task.ErrInvalidToken)
		return
	}
	sess, err := s.deps.Sessions.RevokeSessionByRefreshToken(r.Context(), auth.HashToken(*req.Refresh))
	if errors.Is(err, task.ErrTokenReused) {
		s.securityEvent(r, "token_reuse_detected", "session_id", sess.ID.String(), "subject", sess.UserID.String())
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "session_revoked", "session_id", sess.ID.String(), "subject", sess.UserID.String(), "reason", "logout")
	s.encode(w, http.StatusOK, struct{}{})
}
