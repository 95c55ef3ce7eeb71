package auth

import "crypto/sha256"

// HashSecret is the SHA-256 under which a random secret (a refresh token,
// an API key) is stored, and by which it is found again. A fast hash suits
// 256 random bits; passwords, which can be guessed, go through Hasher.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}
