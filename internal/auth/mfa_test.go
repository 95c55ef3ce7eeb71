package auth

import (
	"bytes"
	"encoding/base32"
	"strings"
	"testing"
	"time"
)

// rfcSecret is RFC 6238's SHA-1 seed, "12345678901234567890", in base32.
var rfcSecret = base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))

func TestTOTPCodeMatchesRFC6238(t *testing.T) {
	// Appendix B, truncated to our 6 digits.
	for unix, want := range map[int64]string{59: "287082", 1111111109: "081804", 1111111111: "050471",
		1234567890: "005924", 2000000000: "279037", 20000000000: "353130"} {
		got, err := TOTPCode(rfcSecret, TOTPStep(time.Unix(unix, 0)))
		if err != nil || got != want {
			t.Errorf("T=%d: code = %q, %v; want %q", unix, got, err, want)
		}
	}
}

func TestCheckTOTP(t *testing.T) {
	now := time.Unix(1234567890, 0)
	cur := TOTPStep(now)
	code := func(step int64) string {
		c, err := TOTPCode(rfcSecret, step)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name     string
		code     string
		lastStep int64
		want     int64
		ok       bool
	}{
		{"current", code(cur), 0, cur, true},
		{"one behind", code(cur - 1), 0, cur - 1, true},
		{"one ahead", code(cur + 1), 0, cur + 1, true},
		{"two behind", code(cur - 2), 0, 0, false},
		{"two ahead", code(cur + 2), 0, 0, false},
		{"step used", code(cur), cur, 0, false},
		{"older than used", code(cur - 1), cur, 0, false},
		{"later than used", code(cur + 1), cur, cur + 1, true},
		{"short", code(cur)[:5], 0, 0, false},
		{"empty", "", 0, 0, false},
		{"letters", "abcdef", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CheckTOTP(rfcSecret, tt.code, now, tt.lastStep)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("CheckTOTP = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestNewTOTP(t *testing.T) {
	e, err := NewTOTP("Task Manager", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Secret) != 32 || !strings.HasPrefix(e.URI, "otpauth://totp/Task%20Manager:alice?") ||
		!strings.Contains(e.URI, "secret="+e.Secret) || !strings.HasPrefix(e.QRSVG, "<svg") || !strings.HasSuffix(e.QRSVG, "</svg>") {
		t.Fatalf("enrollment = %+v", e)
	}
}

func TestSecretBox(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	old, err := NewSecretBox(k1)
	if err != nil {
		t.Fatal(err)
	}
	sealed, kid := old.Seal([]byte("JBSWY3DPEHPK3PXP"), []byte("user-a"))
	if bytes.Contains(sealed, []byte("JBSWY3DPEHPK3PXP")) {
		t.Fatal("sealed value holds the secret")
	}
	// Rotated: the new key seals, the old one still opens.
	rotated, err := NewSecretBox(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealed, kid, []byte("user-a")); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open after rotation = %q, %v", got, err)
	}
	if _, kid2 := rotated.Seal([]byte("x"), nil); kid2 == kid {
		t.Fatal("rotated box seals under the old key id")
	}
	if _, err := rotated.Open(sealed, kid, []byte("user-b")); err == nil {
		t.Fatal("a sealed value opened for another user")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := rotated.Open(sealed, kid, []byte("user-a")); err == nil {
		t.Fatal("a tampered value opened")
	}
	if _, err := NewSecretBox([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes := NewRecoveryCodes()
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 11 || c[5] != '-' || seen[c] {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
		if !bytes.Equal(HashRecoveryCode(strings.ToUpper(strings.ReplaceAll(c, "-", " "))), hashes[i]) {
			t.Fatalf("code %q does not match its hash typed differently", c)
		}
	}
	if len(codes) != 10 {
		t.Fatalf("%d codes", len(codes))
	}
}
