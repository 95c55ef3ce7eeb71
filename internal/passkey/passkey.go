// Package passkey runs WebAuthn ceremonies for passkeys, over
// go-webauthn: registration, sign-in as a second factor, and passwordless
// sign-in with a discoverable credential. It keeps nothing itself: the
// ceremony state a Begin returns is stored by the caller, looked up by
// the challenge the browser signs, and spent once.
package passkey

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// TTL is how long a ceremony may take, from its options to its answer.
const TTL = 5 * time.Minute

// Errors a ceremony's answer can end in. ErrMalformed is input that is
// not a WebAuthn answer at all; ErrRefused is one that does not verify
// (a wrong signature, an unknown credential, a spent challenge, a cloned
// authenticator, user verification missing).
var (
	ErrMalformed = errors.New("passkey: malformed answer")
	ErrRefused   = errors.New("passkey: answer refused")
)

// RP is the relying party: this service, as browsers see it.
type RP struct{ w *webauthn.WebAuthn }

// New returns the relying party rpID (a host name, never an IP address)
// that accepts answers from origins.
func New(rpID, displayName string, origins []string) (*RP, error) {
	w, err := webauthn.New(&webauthn.Config{
		RPID: rpID, RPDisplayName: displayName, RPOrigins: origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: TTL, TimeoutUVD: TTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: TTL, TimeoutUVD: TTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &RP{w: w}, nil
}

// Credential is a stored passkey: its id, public key, sign counter and
// flags, as JSON.
type Credential = webauthn.Credential

// Account is a user as a ceremony sees them: the user handle (the
// account id, never shown), a name for the authenticator's picker, and
// the passkeys they hold.
type Account struct {
	ID          []byte
	Name        string
	Credentials []Credential
}

func (a *Account) WebAuthnID() []byte                         { return a.ID }
func (a *Account) WebAuthnName() string                       { return a.Name }
func (a *Account) WebAuthnDisplayName() string                { return a.Name }
func (a *Account) WebAuthnCredentials() []webauthn.Credential { return a.Credentials }

// Ceremony is the state between a Begin and its Finish: the caller stores
// Session under ChallengeHash until Expires, and spends it once.
type Ceremony struct {
	ChallengeHash []byte
	Session       []byte
	Expires       time.Time
}

func ceremony(s *webauthn.SessionData) (*Ceremony, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &Ceremony{ChallengeHash: HashChallenge(s.Challenge), Session: b, Expires: s.Expires}, nil
}

// HashChallenge is the key a ceremony is stored and found under: the
// challenge as the browser echoes it, base64url, hashed.
func HashChallenge(challenge string) []byte {
	sum := sha256.Sum256([]byte("webauthn:" + challenge))
	return sum[:]
}

func session(b []byte) (*webauthn.SessionData, error) {
	var s webauthn.SessionData
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("passkey: stored ceremony: %w", err)
	}
	return &s, nil
}

// BeginRegistration returns the creation options for a new passkey of a
// ({"publicKey": ...}, for navigator.credentials.create) and its ceremony.
// The passkeys a holds are excluded, so one authenticator is not
// registered twice.
func (rp *RP) BeginRegistration(a *Account) (json.RawMessage, *Ceremony, error) {
	opts, s, err := rp.w.BeginRegistration(a,
		webauthn.WithExclusions(webauthn.Credentials(a.Credentials).CredentialDescriptors()),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	return answer(opts, s, err)
}

// BeginLogin returns the request options for a's passkeys (a second
// factor) and its ceremony.
func (rp *RP) BeginLogin(a *Account) (json.RawMessage, *Ceremony, error) {
	opts, s, err := rp.w.BeginLogin(a, webauthn.WithUserVerification(protocol.VerificationRequired))
	return answer(opts, s, err)
}

// BeginDiscoverable returns request options that any of this service's
// passkeys may answer (passwordless sign-in), and its ceremony.
func (rp *RP) BeginDiscoverable() (json.RawMessage, *Ceremony, error) {
	opts, s, err := rp.w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	return answer(opts, s, err)
}

func answer(opts any, s *webauthn.SessionData, err error) (json.RawMessage, *Ceremony, error) {
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: %w", err)
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: %w", err)
	}
	c, err := ceremony(s)
	return b, c, err
}

// Creation is a parsed navigator.credentials.create answer.
type Creation struct {
	p *protocol.ParsedCredentialCreationData
}

// ParseCreation parses a registration answer (the PublicKeyCredential as
// JSON).
func ParseCreation(raw []byte) (*Creation, error) {
	p, err := protocol.ParseCredentialCreationResponseBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &Creation{p: p}, nil
}

// ChallengeHash is the key of the ceremony c answers.
func (c *Creation) ChallengeHash() []byte {
	return HashChallenge(c.p.Response.CollectedClientData.Challenge)
}

// FinishRegistration verifies c against the stored ceremony of a's
// registration and returns the new passkey.
func (rp *RP) FinishRegistration(a *Account, stored []byte, c *Creation) (*Credential, error) {
	s, err := session(stored)
	if err != nil {
		return nil, err
	}
	cred, err := rp.w.CreateCredential(a, *s, c.p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return cred, nil
}

// Assertion is a parsed navigator.credentials.get answer.
type Assertion struct {
	p *protocol.ParsedCredentialAssertionData
}

// ParseAssertion parses a sign-in answer (the PublicKeyCredential as JSON).
func ParseAssertion(raw []byte) (*Assertion, error) {
	p, err := protocol.ParseCredentialRequestResponseBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &Assertion{p: p}, nil
}

// ChallengeHash is the key of the ceremony a answers.
func (a *Assertion) ChallengeHash() []byte {
	return HashChallenge(a.p.Response.CollectedClientData.Challenge)
}

// UserHandle is the account id the passkey says it belongs to (empty for
// a passkey that is not discoverable).
func (a *Assertion) UserHandle() []byte { return a.p.Response.UserHandle }

// CredentialID is the id of the passkey that signed.
func (a *Assertion) CredentialID() []byte { return a.p.RawID }

// FinishLogin verifies a against the stored ceremony (begun by BeginLogin
// for acct, or by BeginDiscoverable) and returns the passkey that signed,
// its counter and flags brought up to date. A counter that did not move
// forward means the key was copied: refused.
func (rp *RP) FinishLogin(acct *Account, stored []byte, a *Assertion) (*Credential, error) {
	s, err := session(stored)
	if err != nil {
		return nil, err
	}
	var cred *Credential
	if len(s.UserID) > 0 {
		cred, err = rp.w.ValidateLogin(acct, *s, a.p)
	} else {
		cred, err = rp.w.ValidateDiscoverableLogin(func(_, handle []byte) (webauthn.User, error) {
			if !bytes.Equal(handle, acct.ID) {
				return nil, errors.New("user handle of another account")
			}
			return acct, nil
		}, *s, a.p)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if cred.Authenticator.CloneWarning {
		return nil, fmt.Errorf("%w: sign counter did not increase", ErrRefused)
	}
	return cred, nil
}

// HardwareBound reports whether c cannot leave its authenticator (it is
// not backup eligible, so never synced): RFC 8176's hwk rather than swk.
func HardwareBound(c *Credential) bool { return !c.Flags.BackupEligible }
