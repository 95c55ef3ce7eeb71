package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/pgtest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, made now.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "taskmanager test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS: with a certificate the server speaks TLS 1.2 or later
// only, and marks its answers for HSTS.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	addr, _ := startServe(t, map[string]string{
		"DATABASE_URL": pgtest.URL(t), "JWT_SIGNING_KEY": strings.Repeat("tls-key-", 8),
		"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile, "SECURE_HSTS_SECONDS": "31536000",
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("https healthz: status %d, tls %v", resp.StatusCode, resp.TLS)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=31536000") {
		t.Fatalf("Strict-Transport-Security = %q", got)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get("https://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.1 client was served")
	}
}

// TestRedirectToHTTPS: with SECURE_SSL_REDIRECT a plain-HTTP request gets
// a 308 to the https URL; probes are answered as they are.
func TestRedirectToHTTPS(t *testing.T) {
	addr, _ := startServe(t, map[string]string{
		"DATABASE_URL": pgtest.URL(t), "JWT_SIGNING_KEY": strings.Repeat("tls-key-", 8),
		"SECURE_SSL_REDIRECT": "true",
	})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Post("http://"+addr+"/api/tasks/", "application/json", strings.NewReader(`{"title":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://"+addr+"/api/tasks/" {
		t.Fatalf("status %d Location %q, want 308 to https", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over plain HTTP: %d, want 200", resp.StatusCode)
	}
}

// TestRateLimitCheckScript runs the tutorial's rate-limit check as shipped.
func TestRateLimitCheckScript(t *testing.T) {
	addr, _ := startServe(t, map[string]string{
		"DATABASE_URL": pgtest.URL(t), "JWT_SIGNING_KEY": strings.Repeat("rl-key--", 8),
	})
	out, err := exec.Command("bash", "../../scripts/ratelimit_check", "http://"+addr).CombinedOutput()
	if err != nil {
		t.Fatalf("ratelimit_check: %v\n%s", err, out)
	}
	for _, want := range []string{"Rate limit hit after 101 requests (user)", "Rate limit hit after 51 requests (anonymous)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ratelimit_check output lacks %q:\n%s", want, out)
		}
	}
}
