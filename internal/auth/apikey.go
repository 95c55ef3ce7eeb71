package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// API keys look like tm_<prefix>_<secret>: the fixed tm_ marks them for
// secret scanners, the public prefix finds the stored row, and only a
// SHA-256 of the whole key is kept (a fast hash suits 256 random bits).
const (
	KeyMarker    = "tm_"
	prefixLen    = 12 // hex characters
	secretBytes  = 32
	secretLen    = 43 // base64url characters of secretBytes, unpadded
	apiKeyLength = len(KeyMarker) + prefixLen + 1 + secretLen
)

// NewAPIKey returns a new key, its public prefix and the hash to store.
func NewAPIKey() (key, prefix string, hash []byte, err error) {
	buf := make([]byte, prefixLen/2+secretBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", "", nil, err
	}
	prefix = hex.EncodeToString(buf[:prefixLen/2])
	key = KeyMarker + prefix + "_" + base64.RawURLEncoding.EncodeToString(buf[prefixLen/2:])
	return key, prefix, HashSecret(key), nil
}

// ParseAPIKey returns the prefix of a well-formed key.
func ParseAPIKey(key string) (prefix string, ok bool) {
	if len(key) != apiKeyLength || !strings.HasPrefix(key, KeyMarker) || key[len(KeyMarker)+prefixLen] != '_' {
		return "", false
	}
	prefix = key[len(KeyMarker) : len(KeyMarker)+prefixLen]
	if _, err := hex.DecodeString(prefix); err != nil {
		return "", false
	}
	return prefix, true
}

// MatchAPIKey compares a presented key with a stored hash in constant time.
func MatchAPIKey(key string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashSecret(key), hash) == 1
}
