package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: what every authenticator app assumes (RFC 6238's
// defaults, Google Authenticator's only choice).
const (
	TOTPPeriod = 30 * time.Second
	TOTPDigits = 6
	// TOTPSkew is how many steps either side of now a code may come from.
	TOTPSkew = 1
)

var totpOpts = totp.ValidateOpts{Period: uint(TOTPPeriod / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrollment is a new TOTP secret as the user is shown it once.
type TOTPEnrollment struct {
	Secret string // base32, no padding
	URI    string // otpauth://totp/...
	QRSVG  string // the URI as a QR code, an SVG document
}

// NewTOTP generates a secret of 160 bits (RFC 4226's recommendation) for
// account at issuer.
func NewTOTP(issuer, account string) (*TOTPEnrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, SecretSize: 20,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("auth: totp: %w", err)
	}
	svg, err := qrSVG(key.URL())
	if err != nil {
		return nil, err
	}
	return &TOTPEnrollment{Secret: key.Secret(), URI: key.URL(), QRSVG: svg}, nil
}

// TOTPStep is the step (RFC 6238's T) that t falls in.
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(TOTPPeriod/time.Second) }

// CheckTOTP finds the step within TOTPSkew of now whose code is code, and
// that is later than lastStep (the last step this user's codes were
// accepted for): a code never works twice, nor one older than the last
// used. The library only answers yes or no for a window, so each step is
// checked here. The caller must record the step, atomically, as used.
func CheckTOTP(secret, code string, now time.Time, lastStep int64) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != TOTPDigits {
		return 0, false
	}
	cur := TOTPStep(now)
	found, ok := int64(0), false
	for d := int64(-TOTPSkew); d <= TOTPSkew; d++ {
		step := cur + d
		want, err := TOTPCode(secret, step)
		if err != nil {
			return 0, false
		}
		// Every step is computed, matched or not: the time taken says nothing.
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && step > lastStep && !ok {
			found, ok = step, true
		}
	}
	return found, ok
}

// TOTPCode is the code of step for secret.
func TOTPCode(secret string, step int64) (string, error) {
	return totp.GenerateCodeCustom(secret, time.Unix(step*int64(TOTPPeriod/time.Second), 0), totpOpts)
}

// qrSVG draws content as a QR code: one path of unit squares, four
// modules of quiet zone, scaled by the viewer.
func qrSVG(content string) (string, error) {
	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("auth: qr: %w", err)
	}
	return drawSVG(code), nil
}

func drawSVG(code barcode.Barcode) string {
	const quiet = 4
	b := code.Bounds()
	w, h := b.Dx()+2*quiet, b.Dy()+2*quiet
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges">`,
		w, h, w*6, h*6)
	fmt.Fprintf(&sb, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, w, h)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, _, _, _ := code.At(x, y).RGBA(); r == 0 {
				fmt.Fprintf(&sb, "M%d %dh1v1h-1z", x-b.Min.X+quiet, y-b.Min.Y+quiet)
			}
		}
	}
	sb.WriteString(`"/></svg>`)
	return sb.String()
}

// RecoveryCodeCount is how many recovery codes a user holds at a time.
const RecoveryCodeCount = 10

// NewRecoveryCodes returns RecoveryCodeCount fresh codes (xxxxx-xxxxx, 50
// random bits each) and the hashes they are stored under.
func NewRecoveryCodes() (codes []string, hashes [][]byte) {
	for range RecoveryCodeCount {
		t := strings.ToLower(rand.Text())[:10]
		c := t[:5] + "-" + t[5:]
		codes = append(codes, c)
		hashes = append(hashes, HashRecoveryCode(c))
	}
	return codes, hashes
}

// HashRecoveryCode is the hash a recovery code is stored and found by,
// whatever case or separators it is typed with.
func HashRecoveryCode(code string) []byte {
	var b strings.Builder
	for _, r := range strings.ToLower(code) {
		if r != '-' && r != ' ' {
			b.WriteRune(r)
		}
	}
	return HashSecret("recovery:" + b.String())
}

// NewMFAToken returns the token that carries a login from its password to
// its second factor, and the hash it is stored under.
func NewMFAToken() (token string, hash []byte) {
	token = "mfa_" + rand.Text() + rand.Text()
	return token, HashSecret(token)
}

// ErrSealed: a secret sealed under a key this box does not hold, or
// tampered with.
var ErrSealed = errors.New("auth: cannot open sealed secret")

// SecretBox seals secrets at rest (TOTP seeds) with AES-256-GCM. Each
// sealed value names the key that sealed it, so keys can rotate: the
// current one seals, previous ones still open.
type SecretBox struct {
	current string
	aeads   map[string]cipher.AEAD
}

// EncryptionKeyBytes is the size of an MFA_ENCRYPTION_KEY.
const EncryptionKeyBytes = 32

// NewSecretBox returns a box that seals under current and opens under it
// and previous. Every key must be EncryptionKeyBytes long.
func NewSecretBox(current []byte, previous ...[]byte) (*SecretBox, error) {
	b := &SecretBox{aeads: map[string]cipher.AEAD{}}
	for i, k := range append([][]byte{current}, previous...) {
		if len(k) != EncryptionKeyBytes {
			return nil, fmt.Errorf("auth: encryption key of %d bytes, want %d", len(k), EncryptionKeyBytes)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := EncryptionKeyID(k)
		if i == 0 {
			b.current = id
		}
		b.aeads[id] = aead
	}
	return b, nil
}

// EncryptionKeyID names an encryption key without revealing it.
func EncryptionKeyID(k []byte) string {
	sum := sha256.Sum256(append([]byte("taskmanager mfa kid:"), k...))
	return hex.EncodeToString(sum[:4])
}

// Seal encrypts plain, bound to context (the owner's id: a sealed value
// copied to another row does not open there). It returns the key id.
func (b *SecretBox) Seal(plain, context []byte) (sealed []byte, keyID string) {
	aead := b.aeads[b.current]
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, context), b.current
}

// Open decrypts what Seal sealed under keyID with the same context.
func (b *SecretBox) Open(sealed []byte, keyID string, context []byte) ([]byte, error) {
	aead, ok := b.aeads[keyID]
	if !ok || len(sealed) < aead.NonceSize() {
		return nil, ErrSealed
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], context)
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}

// KeyID is the id of the key Seal uses now.
func (b *SecretBox) KeyID() string { return b.current }
