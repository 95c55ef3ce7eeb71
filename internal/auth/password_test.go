package auth

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// Each argon2id hash costs about 30 ms (more under -race), so the tests
// share a few hashes instead of computing one per case.

func TestHasherHashVerify(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(2)
	const password = "correct horse battery staple"
	hash, err := h.Hash(ctx, password)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}

	tests := []struct {
		name     string
		encoded  string
		password string
		want     bool
	}{
		{"right password", hash, password, true},
		{"wrong password", hash, "correct horse battery stapler", false},
		{"case matters", hash, "Correct horse battery staple", false},
		{"empty password", hash, "", false},
		{"unknown user", "", password, false},
		{"unknown user, dummy password", "", "dummy", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(ctx, tt.encoded, tt.password)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHasherHashFormat(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(1)
	a, err := h.Hash(ctx, "the same password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	b, err := h.Hash(ctx, "the same password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}

	// PHC string format, argon2 version 0x13, OWASP parameters (12 MiB, t=3,
	// p=1), a 16-byte salt and a 32-byte key in unpadded standard base64.
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=12288,t=3,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	for _, s := range []string{a, b} {
		if !phc.MatchString(s) {
			t.Errorf("hash = %q, want PHC argon2id with m=12288,t=3,p=1", s)
		}
	}
	if a == b {
		t.Errorf("two hashes of one password are both %q, want different salts", a)
	}
	if saltA, saltB := a[len(a)-66:len(a)-44], b[len(b)-66:len(b)-44]; saltA == saltB {
		t.Errorf("salt = %q twice, want a fresh salt per hash", saltA)
	}
}

func TestHasherVerifyMalformedHash(t *testing.T) {
	h := NewHasher(1)
	tests := []string{
		"plaintext",
		"$argon2i$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=16$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2,p=1$!!!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$",
		"$2b$12$abcdefghijklmnopqrstuu5Lh6xF1J1ULj0X9eQ0bPqo5nIcP5W6i",
	}
	for _, encoded := range tests {
		t.Run(encoded, func(t *testing.T) {
			ok, err := h.Verify(context.Background(), encoded, "password")
			if err == nil {
				t.Fatalf("Verify(%q) error = nil, want an error", encoded)
			}
			if ok {
				t.Fatalf("Verify(%q) = true, want false", encoded)
			}
		})
	}
}

// fillSlots takes every hashing slot of h, as concurrent logins would, and
// gives them back when the test ends.
func fillSlots(t *testing.T, h *Hasher) {
	t.Helper()
	for range cap(h.slots) {
		h.slots <- struct{}{}
	}
	t.Cleanup(func() {
		for len(h.slots) > 0 {
			<-h.slots
		}
	})
}

func TestHasherBusy(t *testing.T) {
	h := NewHasher(1)
	hash := "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	fillSlots(t, h)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	t.Run("verify, cancelled context", func(t *testing.T) {
		ok, err := h.Verify(cancelled, hash, "password")
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("Verify error = %v, want ErrBusy", err)
		}
		if ok {
			t.Fatalf("Verify = true, want false")
		}
	})
	t.Run("verify unknown user, cancelled context", func(t *testing.T) {
		ok, err := h.Verify(cancelled, "", "password")
		if !errors.Is(err, ErrBusy) || ok {
			t.Fatalf("Verify = %v, %v; want false, ErrBusy", ok, err)
		}
	})
	t.Run("hash, cancelled context", func(t *testing.T) {
		got, err := h.Hash(cancelled, "password")
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("Hash error = %v, want ErrBusy", err)
		}
		if got != "" {
			t.Fatalf("Hash = %q, want empty on ErrBusy", got)
		}
	})
	t.Run("verify gives up at the deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := h.Verify(ctx, hash, "password")
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("Verify error = %v, want ErrBusy", err)
		}
		if waited := time.Since(start); waited < 40*time.Millisecond {
			t.Fatalf("Verify gave up after %v, want it to wait for a slot until the deadline", waited)
		}
	})
	if n := len(h.slots); n != cap(h.slots) {
		t.Fatalf("slots taken after refused calls = %d, want %d (a refused call must not take or free a slot)", n, cap(h.slots))
	}
}

func TestHasherWaitsForSlot(t *testing.T) {
	h := NewHasher(1)
	fillSlots(t, h)

	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "a password to hash")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Hash returned %v while every slot was taken, want it to wait", err)
	case <-time.After(50 * time.Millisecond):
	}
	<-h.slots // a concurrent hash finishes
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Hash after a slot freed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Hash still waiting after a slot was freed")
	}
	if n := len(h.slots); n != 0 {
		t.Fatalf("slots taken after Hash returned = %d, want 0", n)
	}
}

// TestVerifyRejectsCorruptParameters: a stored hash with impossible cost
// parameters is an error, never a panic or a gigantic allocation.
func TestVerifyRejectsCorruptParameters(t *testing.T) {
	h := NewHasher(1)
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	for _, params := range []string{"m=19456,t=0,p=1", "m=19456,t=2,p=0", "m=4294967295,t=2,p=1", "m=1,t=2,p=1"} {
		encoded := "$argon2id$v=19$" + params + "$" + salt + "$" + key
		if ok, err := h.Verify(context.Background(), encoded, "whatever-password"); err == nil || ok {
			t.Errorf("Verify with %s = %v, %v; want an error", params, ok, err)
		}
	}
}

// Logins one after another reuse one hash's memory: the process does not
// grow by 12 MiB per login until the collector happens to run.
func TestHasherReusesMemory(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 4 {
		if _, err := h.Verify(ctx, "", "some password"); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapSys) - int64(before.HeapSys); grown > 20<<20 {
		t.Fatalf("the heap grew by %d MiB over four sequential hashes; one hash needs 12", grown>>20)
	}
}

// The dummy hash an unknown user is checked against has the real cost
// parameters, so that check takes as long as a wrong password.
func TestHasherDummyCostsARealHash(t *testing.T) {
	_, key, mem, iter, threads, err := decodeHash(NewHasher(1).dummy)
	if err != nil || mem != argonMemoryKiB || iter != argonTime || threads != argonThreads || len(key) != argonKeyLen {
		t.Fatalf("dummy = %q (err %v)", NewHasher(1).dummy, err)
	}
}

// Hashes stored by earlier versions (19 MiB, two passes) still verify.
func TestHasherVerifiesEarlierParameters(t *testing.T) {
	salt := []byte("sixteen byte slt")
	old := encodeHash(salt, argon2.IDKey([]byte("an old password"), salt, 2, 19*1024, 1, 32), 19*1024, 2, 1)
	h := NewHasher(1)
	for _, tc := range []struct {
		password string
		want     bool
	}{{"an old password", true}, {"another password", false}} {
		if ok, err := h.Verify(context.Background(), old, tc.password); err != nil || ok != tc.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tc.password, ok, err, tc.want)
		}
	}
}
