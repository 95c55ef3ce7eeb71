package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"strings"

	"github.com/acme/taskmanager/internal/task"
)

// HashSecret is the SHA-256 under which a random secret (a refresh token,
// an API key) is stored, and by which it is found again. A fast hash suits
// 256 random bits; passwords, which can be guessed, go through Hasher.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// NewOAuthClient gives c a fresh client_id and, for a confidential
// client, a secret: returned, to be shown once, and set on c only as its
// hash. Both are random; the prefixes tell them apart in a leak report.
func NewOAuthClient(c *task.OAuthClient, confidential bool) (secret string) {
	c.ClientID = "tmc_" + strings.ToLower(rand.Text())
	if !confidential {
		c.SecretHash = nil
		return ""
	}
	secret = "tms_" + rand.Text() + rand.Text()
	c.SecretHash = HashSecret(secret)
	return secret
}
