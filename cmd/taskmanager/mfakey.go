package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	raw, err := os.ReadFile(path)
	if err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s is not 64 hex digits: delete it to generate a new key", path)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Written aside and linked into place: of two instances starting
	// together one key wins whole, and the other reads it.
	f, err := os.CreateTemp(filepath.Dir(path), ".mfa_key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return devMFAKey(path)
}
