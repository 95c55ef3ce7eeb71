package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/ratelimit"
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
	Username *string `json:"username" validate:"required,username"`
	Password *string `json:"password" validate:"required"`
	Email    *string `json:"email" validate:"omitempty,max=254,email"`
}

func (req *registerRequest) valid() error {
	return merge(check(req), passwordProblems("password", deref(req.Password), deref(req.Username)))
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
		return task.Invalid(map[string][]string{field: problems})
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
	Username *string `json:"username" validate:"required,username_max"`
	Password *string `json:"password" validate:"required"`
}

func (req *credentials) valid() error { return check(req) }

type tokenPairJSON struct {
	Access    string `json:"access"`
	Refresh   string `json:"refresh"`
	TokenType string `json:"token_type"`
	ExpiresIn int    `json:"expires_in"`
}

// handleTokenObtain handles POST /api/token/: a login, which opens a
// session, or for a user with a second factor answers mfa_required with
// the mfa_token that POST /api/token/mfa/ finishes it with.
func (s *Server) handleTokenObtain(w http.ResponseWriter, r *http.Request) {
	var req credentials
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.login(r, *req.Username, *req.Password)
	if err != nil {
		s.error(w, r, err)
		return
	}
	f, err := s.secondFactor(r.Context(), u.ID)
	if err == nil && f != nil {
		info(r.Context()).userID = u.ID.String()
		err = s.challenge(r.Context(), u, f)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.openSession(w, r, u, []string{task.AMRPassword})
}

// openSession opens a session for u, signed in now with the methods amr,
// and answers its token pair.
func (s *Server) openSession(w http.ResponseWriter, r *http.Request, u *task.User, amr []string) {
	sess := &task.Session{ID: uuid.New(), UserID: u.ID, UserAgent: truncate(r.UserAgent(), 256), IP: info(r.Context()).clientIP}
	access, refresh, refreshExp, err := s.issuePair(u.ID, sess.ID, s.now(), amr)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.deps.Sessions.CreateSession(r.Context(), sess, auth.HashSecret(refresh), refreshExp); err != nil {
		s.error(w, r, err)
		return
	}
	info(r.Context()).userID = u.ID.String()
	s.securityEvent(r, "login_succeeded", "session_id", sess.ID.String(), "amr", strings.Join(amr, " "))
	s.encode(w, http.StatusOK, tokenPairJSON{Access: access, Refresh: refresh, TokenType: "Bearer",
		ExpiresIn: int(s.tokens.TTL(auth.Access).Seconds())})
}

// issuePair signs a new access token and refresh token for a session that
// began at authTime with the methods amr; none once the session has
// reached its maximum age.
func (s *Server) issuePair(userID, sessionID uuid.UUID, authTime time.Time, amr []string) (access, refresh string, refreshExp time.Time, err error) {
	now := s.now()
	if refresh, refreshExp, err = s.tokens.IssueAMR(auth.Refresh, userID, sessionID, authTime, now, amr); err != nil {
		if errors.Is(err, auth.ErrSessionEnded) {
			err = task.ErrSessionEnded
		}
		return "", "", time.Time{}, err
	}
	access, _, err = s.tokens.IssueAMR(auth.Access, userID, sessionID, authTime, now, amr)
	return access, refresh, refreshExp, err
}

// login checks a username and password. Unknown users, wrong passwords and
// inactive users get the same error after the same hashing work.
func (s *Server) login(r *http.Request, username, password string) (u *task.User, err error) {
	ctx := r.Context()
	att, err := s.beginAttempt(r, username)
	if err != nil {
		return nil, err
	}
	defer func() { att.end(err) }()
	u, err = s.deps.Users.FindUserByUsername(ctx, username)
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
		if u != nil {
			s.securityEvent(r, "login_failed", "subject", u.ID.String())
		} else {
			s.securityEvent(r, "login_failed")
		}
		return nil, task.ErrBadCredentials
	}
	return u, nil
}

// reauthenticate asks the signed-in caller for their password again (to
// mint a key, to change it) and returns their account. A wrong one counts
// as a failed login. With p, a user who has a second factor must also
// prove it: by p's code or recovery code, or by a session that used one
// less than task.StepUpWindow ago; else mfa_required (RFC 9470). A wrong
// proof counts as a failed login too.
func (s *Server) reauthenticate(r *http.Request, password string, p *stepUp) (u *task.User, err error) {
	id := task.IdentityFromContext(r.Context())
	u, err = s.deps.Users.FindUserByID(r.Context(), id.UserID)
	if err != nil {
		return nil, err
	}
	att, err := s.beginAttempt(r, u.Username)
	if err != nil {
		return nil, err
	}
	defer func() { att.end(err) }()
	ok, err := s.verifyPassword(r.Context(), u.PasswordHash, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.securityEvent(r, "current_password_failed")
		return nil, task.ErrWrongPassword
	}
	if p == nil {
		return u, nil
	}
	f, err := s.secondFactor(r.Context(), u.ID)
	if err != nil || f == nil {
		return u, err
	}
	if !p.given() && s.steppedUp(id) {
		return u, nil
	}
	if _, err := s.proveSecondFactor(r, u.ID, f, p); err != nil {
		return nil, err
	}
	return u, nil
}

// passwordRequest is a request body that carries the caller's current
// password, which its valid demands, and may carry a second-factor proof.
type passwordRequest interface {
	request
	currentPassword() string
	proof() *stepUp
}

// decodeReauthenticated decodes the body into req, then proves the caller
// again with the current password in it, and the second factor.
func (s *Server) decodeReauthenticated(w http.ResponseWriter, r *http.Request, req passwordRequest) (*task.User, error) {
	if err := s.decode(w, r, req); err != nil {
		return nil, err
	}
	return s.reauthenticate(r, req.currentPassword(), req.proof())
}

// attempt is one password check, counted against the failed-login budgets.
// Failures count per (username, client IP or IPv6 /64), so one address
// cannot lock a user out of every other; a wider cap per username slows
// only the addresses that have failed for that username. The attempt is
// counted before the password is checked, so racing guesses cannot slip
// past the budget, and given back unless the password was wrong.
type attempt struct {
	s        *Server
	ctx      context.Context
	username string
	pair     string
	taken    ratelimit.Decision
}

// normalUsername is the key failures are counted under: usernames match
// case-insensitively, and "CAROL " is carol to whoever types it.
func normalUsername(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

func (s *Server) beginAttempt(r *http.Request, username string) (*attempt, error) {
	ctx := r.Context()
	t := s.throttle
	// The accounting must finish even if the client hangs up mid-check.
	a := &attempt{s: s, ctx: context.WithoutCancel(ctx), username: normalUsername(username)}
	a.pair = a.username + "|" + bucketIP(info(ctx).clientIP)
	before, err := t.loginPair.Peek(ctx, a.pair)
	if err != nil {
		return nil, err
	}
	if before.Remaining < before.Limit { // this address has failed for this username lately
		wide, err := t.loginUsername.Peek(ctx, a.username)
		if err != nil {
			return nil, err
		}
		if !wide.Allowed {
			t.count(t.loginUsername, wide)
			sp := refused(t.loginUsername, a.username, wide)
			s.throttled(r, sp)
			return nil, refusal{sp}
		}
	}
	if a.taken, err = t.loginPair.Take(ctx, a.pair); err != nil {
		return nil, err
	}
	t.count(t.loginPair, a.taken)
	if !a.taken.Allowed {
		sp := refused(t.loginPair, a.pair, a.taken)
		s.throttled(r, sp)
		return nil, refusal{sp}
	}
	return a, nil
}

// end settles the attempt by the outcome of the check: a wrong password
// also counts against the username's wide cap; anything else (success, a
// busy hasher, a database error) is given back, so only failures use the
// budget up. A store failure here must not change the answer.
func (a *attempt) end(err error) {
	if task.ErrorCode(err) == task.EAUTHFAILED {
		_, _ = a.s.throttle.loginUsername.Take(a.ctx, a.username)
		return
	}
	_ = a.s.throttle.loginPair.Refund(a.ctx, a.pair, a.taken)
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

func (req *refreshRequest) valid() error { return check(req) }

type tokenRefreshJSON struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

// handleTokenRefresh handles POST /api/token/refresh/: rotation. The old
// refresh token is consumed; presenting it again kills its session.
func (s *Server) handleTokenRefresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	old, err := s.checkRefresh(*req.Refresh)
	if err != nil {
		s.error(w, r, err)
		return
	}
	access, refresh, refreshExp, err := s.issuePair(old.UserID, old.SessionID, old.AuthTime, old.AMR)
	if err != nil {
		s.error(w, r, err)
		return
	}
	_, err = s.deps.Sessions.RotateRefreshToken(r.Context(), auth.HashSecret(*req.Refresh), auth.HashSecret(refresh), refreshExp)
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

func (req *verifyRequest) valid() error { return check(req) }

// handleTokenVerify handles POST /api/token/verify/. Like simplejwt it
// takes either kind of token; either must belong to a live session.
func (s *Server) handleTokenVerify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if err := s.decode(w, r, &req); err != nil {
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
	_, err := s.checkAccess(ctx, raw)
	if !errors.Is(err, task.ErrInvalidToken) {
		return err // valid, or an access token that is expired or revoked
	}
	if _, err := s.checkRefresh(raw); err != nil {
		return err
	}
	return s.deps.Sessions.CheckRefreshToken(ctx, auth.HashSecret(raw))
}

// checkRefresh verifies a refresh token's signature and claims; whether it
// is still its session's current one is the store's to say.
func (s *Server) checkRefresh(raw string) (*auth.Token, error) {
	tok, err := s.tokens.Verify(auth.Refresh, raw)
	if errors.Is(err, auth.ErrExpiredToken) {
		return nil, task.ErrRefreshExpired
	}
	if err != nil {
		return nil, task.ErrInvalidToken
	}
	return tok, nil
}

// handleTokenBlacklist handles POST /api/token/blacklist/: logout of the
// refresh token's session, access tokens included.
func (s *Server) handleTokenBlacklist(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if _, err := s.checkRefresh(*req.Refresh); err != nil {
		s.error(w, r, err)
		return
	}
	sess, err := s.deps.Sessions.RevokeSessionByRefreshToken(r.Context(), auth.HashSecret(*req.Refresh))
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
