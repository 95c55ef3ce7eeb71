package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
)

// devOAuthKeyFile is where development keeps the RSA key that signs OAuth
// and ID tokens when OAUTH_RSA_KEY_FILE is unset; production requires the
// variable (config says so), so this is never used there.
var devOAuthKeyFile = filepath.Join(".data", "oauth_rsa_key.pem")

// devOAuthKey reads the development key at path, generating it (mode 600)
// the first time, so tokens survive a restart.
func devOAuthKey(path string) (*rsa.PrivateKey, error) {
	return devKey(path, func() ([]byte, error) {
		k, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}, func(raw []byte) (*rsa.PrivateKey, error) {
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
	})
}
