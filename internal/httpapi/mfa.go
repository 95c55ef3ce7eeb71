package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/auth"
	"github.com/acme/taskmanager/internal/task"
)

// serviceName names the service in the user's authenticator app and
// passkey manager.
const serviceName = "Task Manager"

// stepUp is the second-factor proof a sensitive request may carry: a
// TOTP code, a recovery code, or a passkey's answer to a sign-in
// ceremony.
type stepUp struct {
	Code         *string         `json:"code" validate:"omitnil,max=64"`
	RecoveryCode *string         `json:"recovery_code" validate:"omitnil,max=64"`
	Passkey      json.RawMessage `json:"passkey" validate:"omitempty,passkey_answer"`
}

func (p *stepUp) given() bool { return p.Code != nil || p.RecoveryCode != nil || p.Passkey != nil }

// proof returns the request's second-factor proof.
func (p *stepUp) proof() *stepUp { return p }

// onlyOne says which field is too many when more than one proof is sent.
func (p *stepUp) onlyOne() error {
	switch {
	case p.Code != nil && p.RecoveryCode != nil:
		return task.FieldError("recovery_code", "Send one of code, recovery_code or passkey.")
	case p.Passkey != nil && (p.Code != nil || p.RecoveryCode != nil):
		return task.FieldError("passkey", "Send one of code, recovery_code or passkey.")
	}
	return nil
}

// factors are a user's second factors: a confirmed TOTP (or nil), their
// passkeys, and whether they hold an unused recovery code.
type factors struct {
	totp          *task.TOTP
	passkeys      []*task.Passkey
	recoveryCodes bool
}

// methods are the ways the user can prove f, as mfa_required names them.
func (f *factors) methods() []string {
	var m []string
	if f.totp != nil {
		m = append(m, task.MethodTOTP)
	}
	if f.recoveryCodes {
		m = append(m, task.MethodRecoveryCode)
	}
	if len(f.passkeys) > 0 {
		m = append(m, task.MethodPasskey)
	}
	return m
}

// secondFactor returns the user's second factors, or nil when they have
// none.
func (s *Server) secondFactor(ctx context.Context, userID uuid.UUID) (*factors, error) {
	t, err := s.deps.MFA.FindTOTP(ctx, userID)
	if task.ErrorCode(err) == task.ENOTFOUND || err == nil && !t.Confirmed {
		t, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	keys, err := s.deps.MFA.FindPasskeys(ctx, userID)
	if err != nil || t == nil && len(keys) == 0 {
		return nil, err
	}
	codes, err := s.deps.MFA.HasRecoveryCodes(ctx, userID)
	if err != nil {
		return nil, err
	}
	return &factors{totp: t, passkeys: keys, recoveryCodes: codes}, nil
}

// openTOTP decrypts t's secret. One sealed under a key no longer
// configured cannot be checked until an operator restores the key: that
// is their problem to fix, said once per try in the log, and a 503 to the
// user, whose recovery codes and passkeys still work.
func (s *Server) openTOTP(ctx context.Context, t *task.TOTP) (string, error) {
	if s.deps.Secrets == nil {
		return "", task.ErrUnavailable
	}
	plain, err := s.deps.Secrets.Open(t.Sealed, t.KeyID, t.UserID[:])
	if errors.Is(err, auth.ErrSealed) {
		s.log.ErrorContext(ctx, "a TOTP secret cannot be opened: its key is not in MFA_ENCRYPTION_KEY or MFA_PREVIOUS_ENCRYPTION_KEYS; "+
			"restore the key, or reset the user's second factor (DELETE /api/admin/users/{id}/mfa/)",
			"key_id", t.KeyID, "subject", t.UserID.String())
		return "", task.ErrUnavailable
	}
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// proveSecondFactor checks p against the second factors f of the user
// userID and spends what it used: the code's time step, the recovery
// code, or the passkey ceremony. It returns the amr of the proof. A wrong
// proof is an authentication_failed refusal (which a caller's login
// attempt counts as a failure); none at all, mfa_required.
func (s *Server) proveSecondFactor(r *http.Request, userID uuid.UUID, f *factors, p *stepUp) ([]string, error) {
	if p.Passkey != nil {
		amr, err := s.provePasskey(r.Context(), userID, f.passkeys, p.Passkey)
		if task.ErrorCode(err) == task.EAUTHFAILED {
			s.securityEvent(r, "second_factor_failed", "subject", userID.String(), "method", task.MethodPasskey)
		}
		if err != nil {
			return nil, err
		}
		return []string{task.AMRPassword, amr, task.AMRMFA}, nil
	}
	ctx := r.Context()
	ok := false
	switch {
	case !p.given():
		return nil, task.MFARequired(nil)
	case p.RecoveryCode != nil: // whichever second factor they stand in for
		var err error
		if ok, err = s.deps.MFA.UseRecoveryCode(ctx, userID, auth.HashRecoveryCode(*p.RecoveryCode)); err != nil {
			return nil, err
		}
		if ok {
			s.securityEvent(r, "recovery_code_used", "subject", userID.String())
		}
	case f.totp != nil:
		secret, err := s.openTOTP(ctx, f.totp)
		if err != nil {
			return nil, err
		}
		step, match := auth.CheckTOTP(secret, *p.Code, s.now(), f.totp.LastStep)
		if match {
			if ok, err = s.deps.MFA.UseTOTPStep(ctx, userID, step); err != nil {
				return nil, err
			}
		}
	}
	if !ok {
		s.securityEvent(r, "second_factor_failed", "subject", userID.String())
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
		return task.FieldError("code", "Send code, recovery_code or passkey.")
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

// finishMFA proves the second step of the login of the mfa_token whose
// hash is hash with p. When the proof itself is refused it also returns
// the user, so that a sign-in page can ask again.
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
	f, err := s.secondFactor(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	if f == nil { // removed since the password step
		return nil, nil, task.ErrMFATokenInvalid
	}
	if amr, err = s.proveSecondFactor(r, u.ID, f, p); err != nil {
		return u, nil, err // the user, for a page that asks again
	}
	if err := s.deps.MFA.UseMFAToken(ctx, hash); err != nil {
		return nil, nil, err
	}
	return u, amr, nil
}

// challenge starts the second step of u's login with the second factors
// f: an mfa_token, stored as its hash, and the mfa_required answer that
// carries it, with a passkey ceremony when u has passkeys.
func (s *Server) challenge(ctx context.Context, u *task.User, f *factors) error {
	token, hash := auth.NewMFAToken()
	if err := s.deps.MFA.CreateMFAToken(ctx, hash, u.ID, s.now().Add(task.MFATokenTTL)); err != nil {
		return err
	}
	ch := &task.MFAChallenge{Token: token, Methods: f.methods(), ExpiresIn: int(task.MFATokenTTL.Seconds())}
	if len(f.passkeys) > 0 && s.deps.Passkeys != nil {
		opts, err := s.passkeyOptions(ctx, u, f.passkeys)
		if err != nil {
			return err
		}
		ch.PasskeyOptions = opts
	}
	return task.MFARequired(ch)
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
	e, err := auth.NewTOTP(serviceName, u.Username)
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
	secret, err := s.openTOTP(ctx, t)
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
// factor; ErrNotFound when they have none, or no authenticator app when
// needTOTP.
func (s *Server) reauthenticateMFA(w http.ResponseWriter, r *http.Request, needTOTP bool) (*task.User, error) {
	var req mfaChangeRequest
	if err := s.decode(w, r, &req); err != nil {
		return nil, err
	}
	f, err := s.secondFactor(r.Context(), task.IdentityFromContext(r.Context()).UserID)
	if err != nil {
		return nil, err
	}
	if f == nil || needTOTP && f.totp == nil {
		return nil, task.ErrNotFound
	}
	return s.reauthenticate(r, *req.CurrentPassword, &req.stepUp)
}

// handleTOTPDelete handles DELETE /api/me/mfa/totp/: the authenticator
// app goes, and the recovery codes unless passkeys stay.
func (s *Server) handleTOTPDelete(w http.ResponseWriter, r *http.Request) {
	u, err := s.reauthenticateMFA(w, r, true)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.deps.MFA.DeleteTOTP(r.Context(), u.ID); err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "mfa_removed", "method", task.MethodTOTP)
	w.WriteHeader(http.StatusNoContent)
}

// handleRecoveryCodes handles POST /api/me/mfa/recovery-codes/: ten new
// codes; the old ones die. A user with passkeys alone gets their first
// codes here (proved with a passkey).
func (s *Server) handleRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	u, err := s.reauthenticateMFA(w, r, false)
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
