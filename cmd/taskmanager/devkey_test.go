package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A development key is made once, kept private, read back the same after
// a restart, and a damaged file is refused rather than replaced.
func TestDevKeysAreMadeOnceAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".data")
	mfa := filepath.Join(dir, "mfa_encryption_key")
	first, err := devMFAKey(mfa)
	if err != nil || len(first) != 32 {
		t.Fatalf("devMFAKey = %x, %v", first, err)
	}
	again, err := devMFAKey(mfa)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("a restart read another key: %x, %v", again, err)
	}
	oauth := filepath.Join(dir, "oauth_rsa_key.pem")
	k1, err := devOAuthKey(oauth)
	if err != nil {
		t.Fatal(err)
	}
	if k2, err := devOAuthKey(oauth); err != nil || !k1.Equal(k2) {
		t.Fatalf("a restart read another RSA key: %v", err)
	}
	for _, p := range []string{mfa, oauth} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 600", p, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v %v, want mode 700", dir, fi.Mode(), err)
	}
	if err := os.WriteFile(mfa, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := devMFAKey(mfa); err == nil {
		t.Fatal("a damaged key file was accepted")
	}
	if raw, _ := os.ReadFile(mfa); string(raw) != "not a key\n" {
		t.Fatal("a damaged key file was replaced")
	}
}
