package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keyFiles writes an Ed25519 key pair as PEM files (what openssl genpkey
// -algorithm ed25519 and openssl pkey -pubout produce) and returns their paths.
func keyFiles(t *testing.T, seed byte) (privPath, pubPath string, priv ed25519.PrivateKey) {
	t.Helper()
	priv = ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+seed)), ed25519.SeedSize)))
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	privPath = writeFile(t, dir, "private.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	pder, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPath = writeFile(t, dir, "public.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}))
	return privPath, pubPath, priv
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadEd25519Keys(t *testing.T) {
	privPath, pubPath, priv := keyFiles(t, 1)
	_, oldPub1, old1 := keyFiles(t, 2)
	_, oldPub2, old2 := keyFiles(t, 3)

	t.Run("private key instead of a signing key", func(t *testing.T) {
		c := mustLoad(t, prodEnv().with("JWT_SIGNING_KEY", "", "JWT_PRIVATE_KEY_FILE", privPath), "serve")
		if !priv.Equal(c.JWTPrivateKey) {
			t.Fatalf("JWTPrivateKey is not the key in %s", privPath)
		}
	})
	t.Run("previous public keys", func(t *testing.T) {
		c := mustLoad(t, devEnv().with("JWT_PREVIOUS_PUBLIC_KEY_FILES", oldPub1+", "+oldPub2), "serve")
		if len(c.JWTPreviousPublicKeys) != 2 ||
			!old1.Public().(ed25519.PublicKey).Equal(c.JWTPreviousPublicKeys[0]) ||
			!old2.Public().(ed25519.PublicKey).Equal(c.JWTPreviousPublicKeys[1]) {
			t.Fatalf("JWTPreviousPublicKeys = %x, want the keys of %s and %s", c.JWTPreviousPublicKeys, oldPub1, oldPub2)
		}
	})

	dir := t.TempDir()
	notPEM := writeFile(t, dir, "key.txt", []byte("not a key"))
	rsaLike := writeFile(t, dir, "rsa.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage der")}))
	tests := []struct {
		name string
		env  env
		want string
	}{
		{"private key file missing", devEnv().with("JWT_PRIVATE_KEY_FILE", filepath.Join(dir, "absent.pem")), "JWT_PRIVATE_KEY_FILE"},
		{"private key file not PEM", devEnv().with("JWT_PRIVATE_KEY_FILE", notPEM), "JWT_PRIVATE_KEY_FILE"},
		{"private key file holds a public key", devEnv().with("JWT_PRIVATE_KEY_FILE", pubPath), "JWT_PRIVATE_KEY_FILE"},
		{"private key file holds garbage DER", devEnv().with("JWT_PRIVATE_KEY_FILE", rsaLike), "JWT_PRIVATE_KEY_FILE"},
		{"public key file holds a private key", devEnv().with("JWT_PREVIOUS_PUBLIC_KEY_FILES", privPath), "JWT_PREVIOUS_PUBLIC_KEY_FILES"},
		{"public key file missing", devEnv().with("JWT_PREVIOUS_PUBLIC_KEY_FILES", oldPub1+","+filepath.Join(dir, "absent.pem")), "JWT_PREVIOUS_PUBLIC_KEY_FILES"},
		{"previous signing key too short", devEnv().with("JWT_PREVIOUS_SIGNING_KEYS", "short"), "JWT_PREVIOUS_SIGNING_KEYS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := problems(t, tt.env, "serve")
			if len(linesNaming(lines, tt.want)) != 1 {
				t.Fatalf("problems = %q, want a line naming %s", lines, tt.want)
			}
		})
	}

	t.Run("private key file is not printed", func(t *testing.T) {
		pemText, err := os.ReadFile(privPath)
		if err != nil {
			t.Fatal(err)
		}
		// A private key where a public key belongs must not end up in the log.
		lines := problems(t, devEnv().with("JWT_PREVIOUS_PUBLIC_KEY_FILES", privPath), "serve")
		body := strings.Split(strings.TrimSpace(string(pemText)), "\n")[1]
		if all := strings.Join(lines, "\n"); strings.Contains(all, body) {
			t.Fatalf("problems print the key file's contents:\n%s", all)
		}
	})
}

func TestLoadPreviousSigningKeys(t *testing.T) {
	old1, old2 := strings.Repeat("a", 32), strings.Repeat("b", 40)
	c := mustLoad(t, devEnv().with("JWT_PREVIOUS_SIGNING_KEYS", old1+" , "+old2), "serve")
	if len(c.JWTPreviousSigningKeys) != 2 || string(c.JWTPreviousSigningKeys[0]) != old1 || string(c.JWTPreviousSigningKeys[1]) != old2 {
		t.Fatalf("JWTPreviousSigningKeys = %q, want [%q %q]", c.JWTPreviousSigningKeys, old1, old2)
	}
}

func TestLoadRedisURL(t *testing.T) {
	tests := []struct {
		url   string
		valid bool
	}{
		{"redis://localhost:6379/0", true},
		{"rediss://:secret@cache.internal:6380", true},
		{"unix:///run/redis.sock", true},
		{"http://localhost:6379", false},
		{"localhost:6379", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			e := devEnv().with("REDIS_URL", tt.url)
			if tt.valid {
				if c := mustLoad(t, e, "serve"); c.RedisURL != tt.url {
					t.Fatalf("RedisURL = %q, want %q", c.RedisURL, tt.url)
				}
				return
			}
			lines := problems(t, e, "serve")
			if len(lines) != 1 || !strings.Contains(lines[0], "REDIS_URL") {
				t.Fatalf("problems = %q, want one line naming REDIS_URL", lines)
			}
		})
	}
}

// rsaKeyFile is an OAuth signing key for production environments, written
// once for the package's tests (TestMain removes it).
var rsaKeyFile string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "config-test-")
	if err != nil {
		panic(err)
	}
	rsaKeyFile = filepath.Join(dir, "oauth.pem")
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(rsaKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestLoadOAuthRSAKey(t *testing.T) {
	dir := t.TempDir()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	pkcs1 := writeFile(t, dir, "pkcs1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))
	privPath, _, _ := keyFiles(t, 4)

	c := mustLoad(t, prodEnv(), "serve")
	if c.OAuthRSAKey == nil || c.OAuthRSAKey.N.BitLen() != 2048 {
		t.Fatalf("OAuthRSAKey not loaded from OAUTH_RSA_KEY_FILE")
	}
	if c := mustLoad(t, devEnv(), "serve"); c.OAuthRSAKey != nil {
		t.Fatal("development without OAUTH_RSA_KEY_FILE must leave the key to serve")
	}
	for name, path := range map[string]string{"too short": pkcs1, "not RSA": privPath, "missing": filepath.Join(dir, "none.pem")} {
		t.Run(name, func(t *testing.T) {
			lines := problems(t, devEnv().with("OAUTH_RSA_KEY_FILE", path), "serve")
			if len(lines) != 1 || !strings.Contains(lines[0], "OAUTH_RSA_KEY_FILE") {
				t.Fatalf("problems = %q, want one line naming OAUTH_RSA_KEY_FILE", lines)
			}
		})
	}
	// Former keys: a public half, or the old private key file itself.
	big, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkix, _ := x509.MarshalPKIXPublicKey(&big.PublicKey)
	pub := writeFile(t, dir, "old.pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}))
	c = mustLoad(t, devEnv().with("OAUTH_PREVIOUS_RSA_KEY_FILES", pub+","+rsaKeyFile), "serve")
	if len(c.OAuthPreviousRSAKeys) != 2 || !c.OAuthPreviousRSAKeys[0].Equal(&big.PublicKey) {
		t.Fatalf("OAuthPreviousRSAKeys = %v, want the keys of both files", c.OAuthPreviousRSAKeys)
	}
	_, edPub, _ := keyFiles(t, 5)
	if lines := problems(t, devEnv().with("OAUTH_PREVIOUS_RSA_KEY_FILES", edPub), "serve"); len(lines) != 1 ||
		!strings.Contains(lines[0], "OAUTH_PREVIOUS_RSA_KEY_FILES") {
		t.Fatalf("an Ed25519 key as a previous OAuth key: problems = %q", lines)
	}

	// Production without it starts (the contract's baseline has none) and
	// says the OAuth server is off.
	c = mustLoad(t, prodEnv().with("OAUTH_RSA_KEY_FILE", ""), "serve")
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "OAUTH_RSA_KEY_FILE is unset") {
		t.Fatalf("production without OAUTH_RSA_KEY_FILE: warnings = %q", c.Warnings)
	}
}

func TestLoadMFAEncryptionKey(t *testing.T) {
	c := mustLoad(t, prodEnv().with("MFA_PREVIOUS_ENCRYPTION_KEYS", strings.Repeat("ab", 32)), "serve")
	if len(c.MFAEncryptionKey) != 32 || len(c.MFAPreviousEncryptionKeys) != 1 || len(c.Warnings) != 0 {
		t.Fatalf("key %d bytes, %d previous, warnings %q", len(c.MFAEncryptionKey), len(c.MFAPreviousEncryptionKeys), c.Warnings)
	}
	for _, bad := range []string{"short", strings.Repeat("zz", 32), strings.Repeat("ab", 31), strings.Repeat("ab", 33)} {
		if lines := problems(t, devEnv().with("MFA_ENCRYPTION_KEY", bad), "serve"); len(lines) != 1 ||
			!strings.Contains(lines[0], "MFA_ENCRYPTION_KEY must be 64 hex digits") {
			t.Errorf("MFA_ENCRYPTION_KEY=%q: problems = %q", bad, lines)
		}
	}
	if lines := problems(t, devEnv().with("MFA_PREVIOUS_ENCRYPTION_KEYS", "nope"), "serve"); len(lines) != 1 ||
		!strings.Contains(lines[0], "MFA_PREVIOUS_ENCRYPTION_KEYS") {
		t.Errorf("a bad previous key: problems = %q", lines)
	}
	// Production without it starts (the contract's baseline has none) and
	// says enrollment is off.
	c = mustLoad(t, prodEnv().with("MFA_ENCRYPTION_KEY", ""), "serve")
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "MFA_ENCRYPTION_KEY is unset") {
		t.Fatalf("production without MFA_ENCRYPTION_KEY: warnings = %q", c.Warnings)
	}
}
