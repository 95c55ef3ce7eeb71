// Package auth wraps the cryptography of taskmanager: argon2id password
// hashes, signed JWTs and API keys. It knows nothing of HTTP or storage.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: one of the OWASP Password Storage Cheat Sheet's
// options (12 MiB, three passes, one lane), which it rates as strong as
// 19 MiB with two: the same work, held in less memory, so a login flood
// at the hashing limit costs the server 12 MiB a slot. Hashes made with
// other parameters (earlier versions used 19 MiB, t=2) keep verifying,
// since a hash carries its own.
const (
	argonMemoryKiB = 12 * 1024
	argonTime      = 3
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// ErrBusy reports that every hashing slot stayed taken until the request
// gave up: the server sheds a login flood instead of running out of memory.
var ErrBusy = errors.New("auth: password hashing is saturated")

// Hasher hashes and verifies passwords with a bound on how many hashes run
// at once, since each one holds 12 MiB.
type Hasher struct {
	slots chan struct{}
	dummy string
}

// NewHasher returns a Hasher running at most concurrency hashes at a time.
func NewHasher(concurrency int) *Hasher {
	// The dummy's key is never matched (Verify fails an unknown user
	// whatever the result), so random bytes serve as well as a real hash
	// and cost no hash at start-up: only its parameters set the time.
	salt, key := make([]byte, argonSaltLen), make([]byte, argonKeyLen)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(key)
	return &Hasher{slots: make(chan struct{}, max(concurrency, 1)),
		dummy: encodeHash(salt, key, argonMemoryKiB, argonTime, argonThreads)}
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ErrBusy
	}
}

// release frees the slot once the hash's 12 MiB is back in the heap. Left
// to the pacer, that block would stay garbage until the heap doubled, so
// the next hash would take fresh memory from the OS rather than reuse it,
// and a few logins would leave the process at twice its working size.
func (h *Hasher) release() {
	runtime.GC()
	<-h.slots
}

// Hash returns the PHC-format argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return encodeHash(salt, key, argonMemoryKiB, argonTime, argonThreads), nil
}

// Verify reports whether password matches encoded. An empty encoded hash
// (an unknown user) is checked against a dummy hash, so it costs the same
// time as a wrong password and always fails.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	known := encoded != ""
	if !known {
		encoded = h.dummy
	}
	salt, want, mem, iter, threads, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), salt, iter, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && known, nil
}

var b64 = base64.RawStdEncoding

func encodeHash(salt, key []byte, mem, iter uint32, threads uint8) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, mem, iter, threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decodeHash(s string) (salt, key []byte, mem, iter uint32, threads uint8, err error) {
	parts := strings.Split(s, "$")
	bad := errors.New("auth: malformed password hash")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return nil, nil, 0, 0, 0, bad
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return nil, nil, 0, 0, 0, bad
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iter, &threads); err != nil ||
		iter < 1 || threads < 1 || mem < 8*uint32(threads) || mem > 1<<20 { // at most 1 GiB
		return nil, nil, 0, 0, 0, bad
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return nil, nil, 0, 0, 0, bad
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return nil, nil, 0, 0, 0, bad
	}
	return salt, key, mem, iter, threads, nil
}
