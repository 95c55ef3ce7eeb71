package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// devOAuthKeyFile is where development keeps the RSA key that signs OAuth
// and ID tokens when OAUTH_RSA_KEY_FILE is unset; production requires the
// variable (config says so), so this is never used there.
var devOAuthKeyFile = filepath.Join(".data", "oauth_rsa_key.pem")

// devOAuthKey reads the development key at path, generating it (mode 600)
// the first time, so tokens survive a restart.
func devOAuthKey(path string) (*rsa.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(raw)
		if block == nil {
			return nil, fmt.Errorf("%s holds no PEM block: delete it to generate a new key", path)
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		k, ok := key.(*rsa.PrivateKey)
		if err != nil || !ok {
			return nil, fmt.Errorf("%s is not a PKCS #8 RSA key: delete it to generate a new key", path)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Written aside and linked into place: of two instances starting
	// together one key wins whole, and the other reads it.
	f, err := os.CreateTemp(filepath.Dir(path), ".oauth_rsa_key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return devOAuthKey(path)
}
