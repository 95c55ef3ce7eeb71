package task

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// IdempotencyTTL is how long a stored answer is replayed for its key.
const IdempotencyTTL = 24 * time.Hour

// IdempotencyKey is a client's Idempotency-Key with the fingerprint of the
// request that carried it (draft-ietf-httpapi-idempotency-key-header). The
// fingerprint is made here only; the store compares it as opaque bytes.
type IdempotencyKey struct {
	Key         string
	Fingerprint [sha256.Size]byte
}

// NewIdempotencyKey checks key (1 to 255 printable ASCII characters) and
// fingerprints the request of method to route with body.
func NewIdempotencyKey(key, method, route string, body []byte) (IdempotencyKey, error) {
	if len(key) < 1 || len(key) > 255 {
		return IdempotencyKey{}, ErrIdempotencyKeyInvalid
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return IdempotencyKey{}, ErrIdempotencyKeyInvalid
		}
	}
	h := sha256.New()
	// Lengths first, so no two (method, route, body) hash the same bytes.
	var n [8]byte
	for _, part := range [][]byte{[]byte(method), []byte(route), body} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	k := IdempotencyKey{Key: key}
	h.Sum(k.Fingerprint[:0])
	return k, nil
}

// LockID is a 64-bit name of the key of owner, for a lock that holds the
// key while its first request runs.
func (k IdempotencyKey) LockID(owner uuid.UUID) int64 {
	h := sha256.New()
	h.Write(owner[:])
	h.Write([]byte(k.Key))
	var sum [sha256.Size]byte
	return int64(binary.BigEndian.Uint64(h.Sum(sum[:0])))
}

// Reply is the answer stored for an idempotency key, replayed to repeats.
type Reply struct {
	Status   int
	Location string
	ETag     string
	Body     []byte
}

// Errors of Idempotency-Key.
var (
	ErrIdempotencyKeyInvalid = Errorf(EBADREQUEST, "Idempotency-Key must be 1 to 255 printable ASCII characters.")
	ErrIdempotencyKeyReused  = Errorf(EIDEMPOTENCY, "This Idempotency-Key was already used with a different request.")
	ErrIdempotencyInProgress = Errorf(ECONFLICT, "A request with this Idempotency-Key is still being processed; retry it later.")
)
