package auth

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

var apiKeyShape = regexp.MustCompile(`^tm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$`)

func newKey(t testing.TB) (key, prefix string, hash []byte) {
	t.Helper()
	key, prefix, hash, err := NewAPIKey()
	if err != nil {
		t.Fatalf("NewAPIKey: %v", err)
	}
	return key, prefix, hash
}

func TestNewAPIKey(t *testing.T) {
	key, prefix, hash := newKey(t)

	if !strings.HasPrefix(key, "tm_") {
		t.Errorf("key = %q, want it to start with tm_", key)
	}
	if !apiKeyShape.MatchString(key) {
		t.Errorf("key = %q, want tm_<12 hex>_<43 base64url>", key)
	}
	if got := key[3:15]; got != prefix {
		t.Errorf("prefix = %q, want %q (the key's own prefix)", prefix, got)
	}
	secret, err := base64.RawURLEncoding.DecodeString(key[16:])
	if err != nil || len(secret) != 32 {
		t.Errorf("secret decodes to %d bytes (err %v), want 32", len(secret), err)
	}
	if bytes.Contains(hash, []byte(key)) || bytes.Contains(hash, secret) {
		t.Errorf("stored hash carries the key")
	}

	got, ok := ParseAPIKey(key)
	if !ok || got != prefix {
		t.Errorf("ParseAPIKey(%q) = %q, %v; want %q, true", key, got, ok, prefix)
	}
	if !MatchAPIKey(key, hash) {
		t.Errorf("MatchAPIKey(key, its hash) = false, want true")
	}
}

func TestNewAPIKeyUnique(t *testing.T) {
	keyA, prefixA, hashA := newKey(t)
	keyB, prefixB, hashB := newKey(t)
	if keyA == keyB {
		t.Fatalf("two keys are both %q", keyA)
	}
	if prefixA == prefixB {
		t.Errorf("two keys share prefix %q, want distinct (the prefix finds the stored row)", prefixA)
	}
	if bytes.Equal(hashA, hashB) {
		t.Errorf("two keys share a hash")
	}
	if MatchAPIKey(keyA, hashB) || MatchAPIKey(keyB, hashA) {
		t.Errorf("a key matches another key's hash")
	}
}

func TestMatchAPIKey(t *testing.T) {
	key, _, hash := newKey(t)
	last := key[len(key)-1]
	changed := byte('A')
	if last == 'A' {
		changed = 'B'
	}
	tests := []struct {
		name string
		key  string
		hash []byte
		want bool
	}{
		{"the key", key, hash, true},
		{"last character changed", key[:len(key)-1] + string(changed), hash, false},
		{"first secret character changed", key[:16] + flip(key[16]) + key[17:], hash, false},
		{"prefix changed", key[:3] + flip(key[3]) + key[4:], hash, false},
		{"truncated", key[:len(key)-1], hash, false},
		{"extended", key + "A", hash, false},
		{"empty key", "", hash, false},
		{"nil hash", key, nil, false},
		{"empty hash", key, []byte{}, false},
		{"truncated hash", key, hash[:16], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchAPIKey(tt.key, tt.hash); got != tt.want {
				t.Fatalf("MatchAPIKey(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

// flip returns a character other than c from the key alphabet.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestParseAPIKeyMalformed(t *testing.T) {
	key, _, _ := newKey(t)
	secret := key[16:]
	tests := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"marker only", "tm_"},
		{"one short", key[:len(key)-1]},
		{"one long", key + "A"},
		{"no marker", "xx_" + key[3:]},
		{"marker upper case", "TM_" + key[3:]},
		{"marker without underscore", "tm-" + key[3:]},
		{"no separator", key[:15] + "x" + key[16:]},
		{"non-hex prefix", "tm_zzzzzzzzzzzz_" + secret},
		{"prefix with space", "tm_0123456789a _" + secret},
		{"prefix with sign", "tm_+123456789ab_" + secret},
		{"prefix too short", "tm_0123456789a_" + secret + "A"},
		{"bearer token", "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo"},
		{"leading space", " " + key[:len(key)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if prefix, ok := ParseAPIKey(tt.key); ok {
				t.Fatalf("ParseAPIKey(%q) = %q, true; want refused", tt.key, prefix)
			}
		})
	}
}

func FuzzParseAPIKey(f *testing.F) {
	key, _, _ := newKey(f)
	for _, s := range []string{
		"",
		"tm_",
		key,
		key[:len(key)-1],
		key + "A",
		"tm_zzzzzzzzzzzz_" + key[16:],
		"tm_0123456789ab_" + strings.Repeat("\xff", 43),
		"tm_0123456789AB_" + key[16:],
		"tm_" + strings.Repeat("_", 56),
		strings.Repeat("é", 29) + "a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		prefix, ok := ParseAPIKey(key)
		if !ok {
			if prefix != "" {
				t.Fatalf("ParseAPIKey(%q) = %q, false; want an empty prefix when refused", key, prefix)
			}
			return
		}
		if !strings.HasPrefix(key, "tm_") {
			t.Fatalf("ParseAPIKey(%q) accepted a key without tm_", key)
		}
		if len(prefix) != 12 || strings.Trim(prefix, "0123456789abcdefABCDEF") != "" {
			t.Fatalf("ParseAPIKey(%q) prefix = %q, want 12 hex characters", key, prefix)
		}
		if key[3:15] != prefix || key[15] != '_' {
			t.Fatalf("ParseAPIKey(%q) prefix = %q, want the 12 characters after tm_ followed by _", key, prefix)
		}
		if len(key) != 59 {
			t.Fatalf("ParseAPIKey accepted a key of %d bytes, want 59", len(key))
		}
	})
}
