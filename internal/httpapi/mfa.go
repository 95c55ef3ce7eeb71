package httpapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

// totpIssuer names the service in the user's authenticator app.
const totpIssuer = "Task Manager"

// stepUp is the second-factor proof a sensitive request may carry: a
// TOTP code or a recovery code.
type stepUp struct {
	Code         *string `json:"code" validate:"omitnil,max=64"`
	RecoveryCode *string `json:"recovery_code" validate:"omitnil,max=64"`
}

func (p *stepUp) given() bool { return p.Code != nil || p.RecoveryCode != nil }

// proof returns the request's second-factor proof.
func (p *stepUp) proof() *stepUp { return p }

// onlyOne says which field is too many when both proofs are sent.
func (p *stepUp) onlyOne() error {
	if p.Code != nil && p.RecoveryCode != nil {
		return task.FieldError("recovery_code", "Send either code or recovery_code, not both.")
	}
	return nil
}

// secondFactor returns the user's confirmed TOTP, or nil when they have
// no second factor.
func (s *Server) secondFactor(ctx context.Context, userID uuid.UUID) (*task.TOTP, error) {
	t, err := s.deps.MFA.FindTOTP(ctx, userID)
	if task.ErrorCode(err) == task.ENOTFOUND || err == nil && !t.Confirmed {
		return nil, nil
	}
	return t, err
}

// openTOTP decrypts t's secret.
func (s *Server) openTOTP(t *task.TOTP) (string, error) {
	if s.deps.Secrets == nil {
		return "", task.ErrUnavailable
	}
	plain, err := s.deps.Secrets.Open(t.Sealed, t.KeyID, t.UserID[:])
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// proveSecondFactor checks p against the user's second factor t and
// spends what it used: the code's time step, or the recovery code. It
// returns the amr of the proof. A wrong proof is ErrWrongCode (which a
// caller's login attempt counts as a failure); none at all, mfa_required.
func (s *Server) proveSecondFactor(r *http.Request, t *task.TOTP, p *stepUp) ([]string, error) {
	ctx := r.Context()
	ok := false
	switch {
	case p.Code != nil:
		secret, err := s.openTOTP(t)
		if err != nil {
			return nil, err
		}
		step, match := auth.CheckTOTP(secret, *p.Code, s.now(), t.LastStep)
		if match {
			if ok, err = s.deps.MFA.UseTOTPStep(ctx, t.UserID, step); err != nil {
				return nil, err
			}
		}
	case p.RecoveryCode != nil:
		var err error
		if ok, err = s.deps.MFA.UseRecoveryCode(ctx, t.UserID, auth.HashRecoveryCode(*p.RecoveryCode)); err != nil {
			return nil, err
		}
		if ok {
			s.securityEvent(r, "recovery_code_used", "subject", t.UserID.String())
		}
	default:
		return nil, task.MFARequired(nil)
	}
	if !ok {
		s.securityEvent(r, "second_factor_failed", "subject", t.UserID.String())
		return nil, task.ErrWrongCode
	}
	return []string{task.AMRPassword, task.AMROTP, task.AMRMFA}, nil
}

// steppedUp reports whether the caller's session used a second factor
// recently enough to count for a sensitive action.
func (s *Server) steppedUp(id *task.Identity) bool {
	return id != nil && slices.Contains(id.AMR, task.AMRMFA) && s.now().Sub(id.AuthTime) < task.StepUpWindow
}

type mfaLoginRequest struct {
	MFAToken *string `json:"mfa_token" validate:"required,max=256"`
	stepUp
}

func (req *mfaLoginRequest) valid() error {
	err := merge(check(req), req.onlyOne())
	if err == nil && !req.given() {
		return task.FieldError("code", "Send code or recovery_code.")
	}
	return err
}

// handleTokenMFA handles POST /api/token/mfa/: the second step of a login
// that answered mfa_required. The mfa_token allows MFATokenTries proofs
// and works once; a wrong proof counts as a failed login.
func (s *Server) handleTokenMFA(w http.ResponseWriter, r *http.Request) {
	var req mfaLoginRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	u, amr, err := s.finishMFA(r, auth.HashSecret(*req.MFAToken), &req.stepUp)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.openSession(w, r, u, amr)
}

func (s *Server) finishMFA(r *http.Request, hash []byte, p *stepUp) (u *task.User, amr []string, err error) {
	ctx := r.Context()
	userID, err := s.deps.MFA.TakeMFATry(ctx, hash)
	if err != nil {
		return nil, nil, err
	}
	if u, err = s.deps.Users.FindUserByID(ctx, userID); err != nil || !u.IsActive {
		return nil, nil, task.ErrMFATokenInvalid
	}
	att, err := s.beginAttempt(r, u.Username)
	if err != nil {
		return nil, nil, err
	}
	defer func() { att.end(err) }()
	t, err := s.secondFactor(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	if t == nil { // removed since the password step
		return nil, nil, task.ErrMFATokenInvalid
	}
	if amr, err = s.proveSecondFactor(r, t, p); err != nil {
		return nil, nil, err
	}
	if err := s.deps.MFA.UseMFAToken(ctx, hash); err != nil {
		return nil, nil, err
	}
	return u, amr, nil
}

// challenge starts the second step of u's login: an mfa_token, stored as
// its hash, and the mfa_required answer that carries it.
func (s *Server) challenge(ctx context.Context, u *task.User) error {
	token, hash := auth.NewMFAToken()
	if err := s.deps.MFA.CreateMFAToken(ctx, hash, u.ID, s.now().Add(task.MFATokenTTL)); err != nil {
		return err
	}
	return task.MFARequired(&task.MFAChallenge{Token: token, Methods: []string{task.MethodTOTP, task.MethodRecoveryCode},
		ExpiresIn: int(task.MFATokenTTL.Seconds())})
}

type totpStartRequest struct {
	CurrentPassword *string `json:"current_password" validate:"required"`
}

func (req *totpStartRequest) valid() error { return check(req) }

type totpEnrollmentJSON struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
	QRSVG      string `json:"qr_svg"`
}

// handleTOTPStart handles POST /api/me/mfa/totp/: a new secret, shown
// this once; nothing is required of the user until it is confirmed.
func (s *Server) handleTOTPStart(w http.ResponseWriter, r *http.Request) {
	var req totpStartRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if s.deps.Secrets == nil {
		s.error(w, r, task.ErrUnavailable)
		return
	}
	u, err := s.reauthenticate(r, *req.CurrentPassword, nil)
	if err != nil {
		s.error(w, r, err)
		return
	}
	e, err := auth.NewTOTP(totpIssuer, u.Username)
	if err != nil {
		s.error(w, r, err)
		return
	}
	sealed, kid := s.deps.Secrets.Seal([]byte(e.Secret), u.ID[:])
	if err := s.deps.MFA.StartTOTP(r.Context(), &task.TOTP{UserID: u.ID, Sealed: sealed, KeyID: kid}); err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusCreated, totpEnrollmentJSON{Secret: e.Secret, OTPAuthURI: e.URI, QRSVG: e.QRSVG})
}

type totpConfirmRequest struct {
	Code *string `json:"code" validate:"required,max=64"`
}

func (req *totpConfirmRequest) valid() error { return check(req) }

type recoveryCodesJSON struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// handleTOTPConfirm handles POST /api/me/mfa/totp/confirm/: a first code
// proves the app holds the secret; from then on it is required at login.
// A wrong code counts as a failed login.
func (s *Server) handleTOTPConfirm(w http.ResponseWriter, r *http.Request) {
	var req totpConfirmRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	codes, err := s.confirmTOTP(r, *req.Code)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "mfa_enrolled", "method", task.MethodTOTP)
	s.encode(w, http.StatusOK, recoveryCodesJSON{RecoveryCodes: codes})
}

func (s *Server) confirmTOTP(r *http.Request, code string) (codes []string, err error) {
	ctx := r.Context()
	u, err := s.deps.Users.FindUserByID(ctx, task.IdentityFromContext(ctx).UserID)
	if err != nil {
		return nil, err
	}
	t, err := s.deps.MFA.FindTOTP(ctx, u.ID)
	if task.ErrorCode(err) == task.ENOTFOUND || err == nil && t.Confirmed {
		return nil, task.ErrMFANotEnrolled
	}
	if err != nil {
		return nil, err
	}
	att, err := s.beginAttempt(r, u.Username)
	if err != nil {
		return nil, err
	}
	defer func() { att.end(err) }()
	secret, err := s.openTOTP(t)
	if err != nil {
		return nil, err
	}
	step, ok := auth.CheckTOTP(secret, code, s.now(), t.LastStep)
	if !ok {
		s.securityEvent(r, "second_factor_failed", "subject", u.ID.String())
		return nil, task.ErrWrongCode
	}
	codes, hashes := auth.NewRecoveryCodes()
	if err := s.deps.MFA.ConfirmTOTP(ctx, u.ID, step, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

// mfaChangeRequest proves the caller twice: password and second factor.
type mfaChangeRequest struct {
	CurrentPassword *string `json:"current_password" validate:"required"`
	stepUp
}

func (req *mfaChangeRequest) valid() error {
	err := merge(check(req), req.onlyOne())
	if err == nil && !req.given() {
		return task.FieldError("code", "This field is required.")
	}
	return err
}

// reauthenticateMFA proves the caller with their password and a second
// factor they must have; ErrNotFound when they have none.
func (s *Server) reauthenticateMFA(w http.ResponseWriter, r *http.Request) (*task.User, error) {
	var req mfaChangeRequest
	if err := s.decode(w, r, &req); err != nil {
		return nil, err
	}
	t, err := s.secondFactor(r.Context(), task.IdentityFromContext(r.Context()).UserID)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, task.ErrNotFound
	}
	return s.reauthenticate(r, *req.CurrentPassword, &req.stepUp)
}

// handleTOTPDelete handles DELETE /api/me/mfa/totp/: the second factor
// goes, recovery codes with it.
func (s *Server) handleTOTPDelete(w http.ResponseWriter, r *http.Request) {
	u, err := s.reauthenticateMFA(w, r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if _, err := s.deps.MFA.DeleteMFA(r.Context(), u.ID); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "mfa_removed", "method", task.MethodTOTP)
	w.WriteHeader(http.StatusNoContent)
}

// handleRecoveryCodes handles POST /api/me/mfa/recovery-codes/: ten new
// codes; the old ones die.
func (s *Server) handleRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	u, err := s.reauthenticateMFA(w, r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	codes, hashes := auth.NewRecoveryCodes()
	if err := s.deps.MFA.ReplaceRecoveryCodes(r.Context(), u.ID, hashes); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "recovery_codes_regenerated")
	s.encode(w, http.StatusOK, recoveryCodesJSON{RecoveryCodes: codes})
}

// handleUserMFAReset handles DELETE /api/admin/users/{id}/mfa/: an admin
// removes a locked-out user's second factor.
func (s *Server) handleUserMFAReset(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if _, err := s.deps.Users.FindUserByID(r.Context(), id); err != nil {
		s.error(w, r, err)
		return
	}
	had, err := s.deps.MFA.DeleteMFA(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "mfa_reset", "target_user_id", id.String(), "had_second_factor", had)
	w.WriteHeader(http.StatusNoContent)
}
