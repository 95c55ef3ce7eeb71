package auth

import "testing"

func TestHashSecret(t *testing.T) {
	a, b := HashSecret("token-a"), HashSecret("token-b")
	if len(a) != 32 {
		t.Fatalf("len(HashSecret) = %d, want 32 (SHA-256)", len(a))
	}
	if string(a) == string(b) {
		t.Fatalf("HashSecret is equal for two secrets")
	}
	if string(HashSecret("token-a")) != string(a) {
		t.Fatalf("HashSecret is not deterministic; a stored refresh token or key could never be found")
	}
}
