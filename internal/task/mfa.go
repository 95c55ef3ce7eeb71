package task

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Sign-in methods as tokens record them (RFC 8176 amr values).
const (
	AMRPassword = "pwd"
	AMROTP      = "otp" // a TOTP code or a recovery code
	AMRMFA      = "mfa" // more than one factor
	// A passkey: hwk when it cannot leave its authenticator, swk when it
	// may be synced (backup eligible).
	AMRHardwareKey = "hwk"
	AMRSoftwareKey = "swk"
)

// Second-factor methods as a login's mfa_required names them.
const (
	MethodTOTP         = "totp"
	MethodRecoveryCode = "recovery_code"
	MethodPasskey      = "passkey"
)

// MFATokenTTL is how long an mfa_token lets a login finish; MFATokenTries
// is how many proofs it takes before it is dead.
const (
	MFATokenTTL   = 5 * time.Minute
	MFATokenTries = 5
	// StepUpWindow is how long a second factor at sign-in also counts
	// for the sensitive actions (minting a key, changing the password).
	StepUpWindow = 10 * time.Minute
	// MaxPasskeysPerUser is the per-user quota of passkeys.
	MaxPasskeysPerUser = 20
)

// TOTP is a user's authenticator-app secret, sealed at rest.
type TOTP struct {
	UserID    uuid.UUID
	Sealed    []byte // AES-GCM, under the key KeyID names
	KeyID     string
	Confirmed bool
	LastStep  int64 // the last time step a code was accepted for
}

// MFAChallenge tells a client how to finish a login that needs a second
// factor: the contract's error.mfa.
type MFAChallenge struct {
	Token     string   `json:"token"`
	Methods   []string `json:"methods"`
	ExpiresIn int      `json:"expires_in"`
	// PasskeyOptions are the WebAuthn request options for the user's
	// passkeys, when they have any.
	PasskeyOptions json.RawMessage `json:"passkey_options,omitempty"`
}

// Passkey is a user's WebAuthn credential.
type Passkey struct {
	ID           uuid.UUID
	UserID       uuid.UUID
	Name         string
	CredentialID []byte
	Credential   []byte // the relying party's record of it, JSON
	CreatedAt    time.Time
	LastUsedAt   *time.Time
}

// Kinds of WebAuthn ceremony.
const (
	CeremonyRegister = "register"
	CeremonyLogin    = "login"
)

// Ceremony is a WebAuthn ceremony between its options and its answer,
// found by the hash of its challenge.
type Ceremony struct {
	ChallengeHash []byte
	Kind          string
	UserID        uuid.UUID // uuid.Nil: a passwordless sign-in, for whoever answers
	Session       []byte
	ExpiresAt     time.Time
}

// MFARequired is the answer to a login, or a sensitive action, that
// needs a second factor; ch is nil for a step-up.
func MFARequired(ch *MFAChallenge) *Error {
	return &Error{Code: EMFAREQUIRED, Message: "A second factor is required.", Reason: "mfa_required", MFA: ch}
}

// ErrorMFA returns the challenge of an EMFAREQUIRED error, or nil.
func ErrorMFA(err error) *MFAChallenge {
	var e *Error
	if errors.As(err, &e) {
		return e.MFA
	}
	return nil
}

// Errors of the second factor.
var (
	ErrWrongCode = refusal(EAUTHFAILED, "wrong_second_factor", "The second-factor code is not valid.")
	// ErrMFATokenInvalid: an mfa_token unknown, expired, used or out of tries.
	ErrMFATokenInvalid = refusal(EAUTHFAILED, "mfa_token_invalid", "This sign-in has expired or is no longer valid; sign in again.")
	ErrMFAEnrolled     = Errorf(ECONFLICT, "An authenticator app is already set up; remove it first.")
	ErrMFANotEnrolled  = Errorf(ECONFLICT, "No authenticator app is being set up; start again.")
	// ErrPasskeyRefused: a passkey's signature that does not verify, for a
	// challenge unknown, spent or expired, or by a passkey not on file.
	ErrPasskeyRefused = refusal(EAUTHFAILED, "passkey_refused", "The passkey could not be verified; try again.")
	ErrPasskeyExists  = Errorf(ECONFLICT, "This passkey is already registered.")
)

// MFAStore keeps second factors: TOTP secrets, recovery codes, and the
// mfa_tokens of logins waiting for their second factor.
type MFAStore interface {
	// StartTOTP stores a new, unconfirmed secret, replacing an unconfirmed
	// one; ErrMFAEnrolled when a confirmed one exists.
	StartTOTP(ctx context.Context, t *TOTP) error
	// FindTOTP returns the user's secret, confirmed or not; ErrNotFound.
	FindTOTP(ctx context.Context, userID uuid.UUID) (*TOTP, error)
	// ConfirmTOTP makes the pending secret required, records step as used
	// and stores the recovery codes' hashes; ErrMFANotEnrolled when there is
	// no pending secret or step was used already.
	ConfirmTOTP(ctx context.Context, userID uuid.UUID, step int64, recoveryHashes [][]byte) error
	// UseTOTPStep records step as used, if it is later than the last used;
	// false when it is not (a replay).
	UseTOTPStep(ctx context.Context, userID uuid.UUID, step int64) (bool, error)
	// UseRecoveryCode spends one unused recovery code; false when none matches.
	UseRecoveryCode(ctx context.Context, userID uuid.UUID, hash []byte) (bool, error)
	// HasRecoveryCodes reports whether the user holds an unused recovery code.
	HasRecoveryCodes(ctx context.Context, userID uuid.UUID) (bool, error)
	// ReplaceRecoveryCodes stores new recovery codes; the old ones die.
	ReplaceRecoveryCodes(ctx context.Context, userID uuid.UUID, hashes [][]byte) error
	// DeleteTOTP removes the user's TOTP secret, and their recovery codes
	// unless passkeys remain for them to stand in for.
	DeleteTOTP(ctx context.Context, userID uuid.UUID) error
	// DeleteMFA removes every second factor of the user, passkeys
	// included; false when there was none.
	DeleteMFA(ctx context.Context, userID uuid.UUID) (bool, error)
	// CreateMFAToken stores a login's mfa_token by its hash.
	CreateMFAToken(ctx context.Context, hash []byte, userID uuid.UUID, expires time.Time) error
	// TakeMFATry spends one try of a live mfa_token and returns its user;
	// ErrMFATokenInvalid when it is unknown, expired, used or out of tries.
	TakeMFATry(ctx context.Context, hash []byte) (uuid.UUID, error)
	// UseMFAToken marks the mfa_token used; ErrMFATokenInvalid when it was.
	UseMFAToken(ctx context.Context, hash []byte) error

	// CreatePasskey stores a new passkey; ErrPasskeyExists when its
	// credential id is on file, ErrQuotaExceeded over MaxPasskeysPerUser.
	CreatePasskey(ctx context.Context, p *Passkey) error
	// FindPasskeys returns the user's passkeys, oldest first.
	FindPasskeys(ctx context.Context, userID uuid.UUID) ([]*Passkey, error)
	// UsePasskey stores a passkey's record after a sign-in, whose sign
	// counter is signCount, and when it was used: only if the stored
	// counter is still below it (both zero for an authenticator that keeps
	// none). False when it is not, because another answer with the same or
	// a later count got there first (a copied key), or the passkey is gone.
	UsePasskey(ctx context.Context, id uuid.UUID, credential []byte, signCount uint32) (bool, error)
	// DeletePasskey removes one of the user's passkeys, and their recovery
	// codes with the last second factor; ErrNotFound.
	DeletePasskey(ctx context.Context, userID, id uuid.UUID) error
	// CreateCeremony stores a ceremony until it expires.
	CreateCeremony(ctx context.Context, c *Ceremony) error
	// TakeCeremony removes and returns the live ceremony of kind under
	// hash: it is spent whatever its answer turns out to be. ErrNotFound.
	TakeCeremony(ctx context.Context, hash []byte, kind string) (*Ceremony, error)
}
