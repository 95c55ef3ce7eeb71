package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
)

// devMFAKeyFile is where development keeps the key that seals TOTP
// secrets when MFA_ENCRYPTION_KEY is unset, so enrolled users survive a
// restart. Production never generates one.
var devMFAKeyFile = filepath.Join(".data", "mfa_encryption_key")

// devMFAKey reads the development key at path, generating it first when
// it does not exist.
func devMFAKey(path string) ([]byte, error) {
	return devKey(path, func() ([]byte, error) {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		return []byte(hex.EncodeToString(key) + "\n"), nil
	}, func(raw []byte) ([]byte, error) {
		k, err := hex.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s is not 64 hex digits: delete it to generate a new key", path)
		}
		return k, nil
	})
}
