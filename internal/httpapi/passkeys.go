package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/passkey"
	"github.com/acme/taskmanager/internal/task"
)

// Passkeys (WebAuthn). Every ceremony is stored in PostgreSQL under the
// hash of its challenge, which the browser signs and echoes: the answer
// finds its ceremony on any instance, and spends it whether it verifies
// or not, so no answer works twice.

// maxPasskeyAnswer bounds a passkey's answer, as JSON: a few hundred
// bytes, or a few KiB with an attestation certificate chain.
const maxPasskeyAnswer = 16 << 10

// notAnAnswer is the field error of a field that should hold a passkey's
// answer and holds something else.
func notAnAnswer(field string) error {
	return task.FieldError(field, "This is not a passkey's answer (a PublicKeyCredential as JSON).")
}

// passkeysOn answers 503 while there is no relying party.
func (s *Server) passkeysOn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.deps.Passkeys == nil {
			s.error(w, r, task.ErrUnavailable)
			return
		}
		h(w, r)
	}
}

// passkeyAccount is a user as a ceremony sees them, with the passkeys
// keys. A stored record that does not decode is left out, and said in the
// log: it must not lock its owner out of their other ways to sign in.
func (s *Server) passkeyAccount(ctx context.Context, userID uuid.UUID, name string, keys []*task.Passkey) *passkey.Account {
	a := &passkey.Account{ID: userID[:], Name: name, Credentials: make([]passkey.Credential, 0, len(keys))}
	for _, k := range keys {
		var c passkey.Credential
		if err := json.Unmarshal(k.Credential, &c); err != nil {
			s.log.ErrorContext(ctx, "a stored passkey does not decode; it is left out", "passkey_id", k.ID.String(), "err", err.Error())
			continue
		}
		a.Credentials = append(a.Credentials, c)
	}
	return a
}

// storeCeremony keeps a ceremony of kind for userID (uuid.Nil: for
// whoever answers) and returns the options the browser needs.
func (s *Server) storeCeremony(ctx context.Context, kind string, userID uuid.UUID, opts json.RawMessage, c *passkey.Ceremony, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	err = s.deps.MFA.CreateCeremony(ctx, &task.Ceremony{ChallengeHash: c.ChallengeHash, Kind: kind, UserID: userID,
		Session: c.Session, ExpiresAt: c.Expires})
	return opts, err
}

// passkeyOptions begins a sign-in with one of the user's passkeys keys,
// for the mfa_required answer of their login.
func (s *Server) passkeyOptions(ctx context.Context, u *task.User, keys []*task.Passkey) (json.RawMessage, error) {
	opts, c, err := s.deps.Passkeys.BeginLogin(s.passkeyAccount(ctx, u.ID, u.Username, keys))
	return s.storeCeremony(ctx, task.CeremonyLogin, u.ID, opts, c, err)
}

// retryPasskeyOptions are fresh passkey options for a sign-in page that
// asks u again after a refused proof: none when u has no passkeys, or the
// first try's failure left no user.
func (s *Server) retryPasskeyOptions(ctx context.Context, u *task.User) json.RawMessage {
	if u == nil || s.deps.Passkeys == nil {
		return nil
	}
	keys, err := s.deps.MFA.FindPasskeys(ctx, u.ID)
	if err != nil || len(keys) == 0 {
		return nil
	}
	opts, err := s.passkeyOptions(ctx, u, keys)
	if err != nil {
		return nil
	}
	return opts
}

// provePasskey verifies raw, a passkey's answer to a sign-in ceremony, as
// made by one of userID's passkeys keys, and stores the passkey's new sign
// counter. It returns the amr of the passkey.
func (s *Server) provePasskey(ctx context.Context, userID uuid.UUID, keys []*task.Passkey, raw json.RawMessage) (string, error) {
	if s.deps.Passkeys == nil {
		return "", task.ErrUnavailable
	}
	a, err := passkey.ParseAssertion(raw)
	if err != nil {
		return "", notAnAnswer("passkey")
	}
	return s.verifyAssertion(ctx, userID, keys, a)
}

func (s *Server) verifyAssertion(ctx context.Context, userID uuid.UUID, keys []*task.Passkey, a *passkey.Assertion) (string, error) {
	c, err := s.deps.MFA.TakeCeremony(ctx, a.ChallengeHash(), task.CeremonyLogin)
	if task.ErrorCode(err) == task.ENOTFOUND || err == nil && c.UserID != uuid.Nil && c.UserID != userID {
		return "", task.ErrPasskeyRefused
	}
	if err != nil {
		return "", err
	}
	cred, err := s.deps.Passkeys.FinishLogin(s.passkeyAccount(ctx, userID, "", keys), c.Session, a)
	if errors.Is(err, passkey.ErrRefused) {
		return "", task.ErrPasskeyRefused
	}
	if err != nil {
		return "", err
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(keys, func(k *task.Passkey) bool { return bytes.Equal(k.CredentialID, cred.ID) })
	if i < 0 {
		return "", task.ErrPasskeyRefused
	}
	if ok, err := s.deps.MFA.UsePasskey(ctx, keys[i].ID, record, cred.Authenticator.SignCount); err != nil || !ok {
		if err == nil {
			err = task.ErrPasskeyRefused // a copy raced it, or the passkey was removed meanwhile
		}
		return "", err
	}
	if passkey.HardwareBound(cred) {
		return task.AMRHardwareKey, nil
	}
	return task.AMRSoftwareKey, nil
}

type passkeyBeginRequest struct {
	CurrentPassword *string `json:"current_password" validate:"required"`
	stepUp
}

func (req *passkeyBeginRequest) valid() error            { return merge(check(req), req.onlyOne()) }
func (req *passkeyBeginRequest) currentPassword() string { return *req.CurrentPassword }

// handlePasskeyBegin handles POST /api/me/passkeys/begin/: the creation
// options of a new passkey. It asks for the password again, and the
// second factor of a user who has one: a passkey is a lasting credential.
func (s *Server) handlePasskeyBegin(w http.ResponseWriter, r *http.Request) {
	var req passkeyBeginRequest
	u, err := s.decodeReauthenticated(w, r, &req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	opts, err := s.beginRegistration(r.Context(), u)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, opts)
}

func (s *Server) beginRegistration(ctx context.Context, u *task.User) (json.RawMessage, error) {
	keys, err := s.deps.MFA.FindPasskeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if len(keys) >= task.MaxPasskeysPerUser {
		return nil, task.ErrQuotaExceeded
	}
	opts, c, err := s.deps.Passkeys.BeginRegistration(s.passkeyAccount(ctx, u.ID, u.Username, keys))
	return s.storeCeremony(ctx, task.CeremonyRegister, u.ID, opts, c, err)
}

type passkeyFinishRequest struct {
	Name       *string         `json:"name" validate:"required,max=100"`
	Credential json.RawMessage `json:"credential" validate:"required,passkey_answer"`
}

func (req *passkeyFinishRequest) valid() error {
	req.Name = trimName(req.Name)
	return check(req)
}

type passkeyJSON struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func passkeyView(p *task.Passkey) passkeyJSON {
	return passkeyJSON{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt.UTC(), LastUsedAt: utc(p.LastUsedAt)}
}

// handlePasskeyFinish handles POST /api/me/passkeys/finish/: the
// authenticator's answer to the creation options, which registers the
// passkey. From then on the user has a second factor.
func (s *Server) handlePasskeyFinish(w http.ResponseWriter, r *http.Request) {
	var req passkeyFinishRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	p, err := s.finishRegistration(r.Context(), &req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "mfa_enrolled", "method", task.MethodPasskey, "passkey_id", p.ID.String())
	s.encode(w, http.StatusCreated, passkeyView(p))
}

var errCeremonySpent = task.FieldError("credential", "This passkey request has expired or was already answered; start again.")

func (s *Server) finishRegistration(ctx context.Context, req *passkeyFinishRequest) (*task.Passkey, error) {
	c, err := passkey.ParseCreation(req.Credential)
	if err != nil {
		return nil, notAnAnswer("credential")
	}
	id := task.IdentityFromContext(ctx)
	cer, err := s.deps.MFA.TakeCeremony(ctx, c.ChallengeHash(), task.CeremonyRegister)
	if task.ErrorCode(err) == task.ENOTFOUND || err == nil && cer.UserID != id.UserID {
		return nil, errCeremonySpent
	}
	if err != nil {
		return nil, err
	}
	u, err := s.deps.Users.FindUserByID(ctx, id.UserID)
	if err != nil {
		return nil, err
	}
	keys, err := s.deps.MFA.FindPasskeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	cred, err := s.deps.Passkeys.FinishRegistration(s.passkeyAccount(ctx, u.ID, u.Username, keys), cer.Session, c)
	if errors.Is(err, passkey.ErrRefused) {
		return nil, task.FieldError("credential", "The passkey could not be verified.")
	}
	if err != nil {
		return nil, err
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return nil, err
	}
	p := &task.Passkey{UserID: u.ID, Name: *req.Name, CredentialID: cred.ID, Credential: record}
	return p, s.deps.MFA.CreatePasskey(ctx, p)
}

// handlePasskeyList handles GET /api/me/passkeys/.
func (s *Server) handlePasskeyList(w http.ResponseWriter, r *http.Request) {
	keys, err := s.deps.MFA.FindPasskeys(r.Context(), task.IdentityFromContext(r.Context()).UserID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := pageJSON[passkeyJSON]{Results: make([]passkeyJSON, 0, len(keys))}
	for _, k := range keys {
		out.Results = append(out.Results, passkeyView(k))
	}
	s.encode(w, http.StatusOK, out)
}

// handlePasskeyDelete handles DELETE /api/me/passkeys/{id}/. The request
// has no body to carry a proof, so the session must have used a second
// factor less than task.StepUpWindow ago (else mfa_required): a stolen
// access token alone must not strip the account of its second factor.
func (s *Server) handlePasskeyDelete(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil && !s.steppedUp(task.IdentityFromContext(r.Context())) {
		err = task.MFARequired(nil)
	}
	if err == nil {
		err = s.deps.MFA.DeletePasskey(r.Context(), task.IdentityFromContext(r.Context()).UserID, id)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.securityEvent(r, "mfa_removed", "method", task.MethodPasskey, "passkey_id", id.String())
	w.WriteHeader(http.StatusNoContent)
}

// handlePasskeySignInBegin handles POST /api/token/passkey/begin/: options
// any of this service's passkeys may answer, for a passwordless sign-in
// (or for a signed-in user's step-up).
func (s *Server) handlePasskeySignInBegin(w http.ResponseWriter, r *http.Request) {
	if err := s.decode(w, r, &emptyRequest{}); err != nil {
		s.error(w, r, err)
		return
	}
	opts, c, err := s.deps.Passkeys.BeginDiscoverable()
	opts, err = s.storeCeremony(r.Context(), task.CeremonyLogin, uuid.Nil, opts, c, err)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.encode(w, http.StatusOK, opts)
}

// emptyRequest is the body {} of a POST that takes no input.
type emptyRequest struct{}

func (*emptyRequest) valid() error { return nil }

type passkeySignInRequest struct {
	Passkey json.RawMessage `json:"passkey" validate:"required,passkey_answer"`
}

func (req *passkeySignInRequest) valid() error { return check(req) }

// handlePasskeySignIn handles POST /api/token/passkey/finish/: a
// passwordless sign-in. The passkey names its account; a refused answer
// counts as a failed login of that account.
func (s *Server) handlePasskeySignIn(w http.ResponseWriter, r *http.Request) {
	var req passkeySignInRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	u, amr, err := s.passwordless(r, req.Passkey)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.openSession(w, r, u, []string{amr, task.AMRMFA})
}

func (s *Server) passwordless(r *http.Request, raw json.RawMessage) (u *task.User, amr string, err error) {
	ctx := r.Context()
	a, err := passkey.ParseAssertion(raw)
	if err != nil {
		return nil, "", notAnAnswer("passkey")
	}
	if userID, herr := uuid.FromBytes(a.UserHandle()); herr == nil {
		u, err = s.deps.Users.FindUserByID(ctx, userID)
		if err != nil && task.ErrorCode(err) != task.ENOTFOUND {
			return nil, "", err // the database's failure, not the passkey's
		}
	}
	if u == nil || !u.IsActive {
		// The ceremony is spent all the same.
		if _, err := s.deps.MFA.TakeCeremony(ctx, a.ChallengeHash(), task.CeremonyLogin); err != nil && task.ErrorCode(err) != task.ENOTFOUND {
			return nil, "", err
		}
		s.securityEvent(r, "login_failed", "method", task.MethodPasskey)
		return nil, "", task.ErrPasskeyRefused
	}
	att, err := s.beginAttempt(r, u.Username)
	if err != nil {
		return nil, "", err
	}
	defer func() { att.end(err) }()
	keys, err := s.deps.MFA.FindPasskeys(ctx, u.ID)
	if err != nil {
		return nil, "", err
	}
	if amr, err = s.verifyAssertion(ctx, u.ID, keys, a); err != nil {
		if task.ErrorCode(err) == task.EAUTHFAILED {
			s.securityEvent(r, "login_failed", "subject", u.ID.String(), "method", task.MethodPasskey)
		}
		return nil, "", err
	}
	return u, amr, nil
}
