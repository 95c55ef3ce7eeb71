package task

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestNewIdempotencyKey(t *testing.T) {
	for _, key := range []string{"", strings.Repeat("k", 256), "caf\u00e9", "tab\t", "del\x7f"} {
		if _, err := NewIdempotencyKey(key, "POST", "/api/tasks/", nil); !errors.Is(err, ErrIdempotencyKeyInvalid) {
			t.Errorf("NewIdempotencyKey(%q) err = %v, want ErrIdempotencyKeyInvalid", key, err)
		}
	}
	base, err := NewIdempotencyKey(strings.Repeat("k", 255), "POST", "/api/tasks/", []byte(`{"title":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, route, body string }{
		{"PUT", "/api/tasks/", `{"title":"a"}`},
		{"POST", "/api/keys/", `{"title":"a"}`},
		{"POST", "/api/tasks/", `{"title":"b"}`},
		{"POST", "/api/tasks/{", `"title":"a"}`}, // the same bytes, cut elsewhere
	} {
		k, _ := NewIdempotencyKey(base.Key, c.method, c.route, []byte(c.body))
		if k.Fingerprint == base.Fingerprint {
			t.Errorf("%v has the fingerprint of the base request", c)
		}
	}
	same, _ := NewIdempotencyKey(base.Key, "POST", "/api/tasks/", []byte(`{"title":"a"}`))
	if same.Fingerprint != base.Fingerprint {
		t.Error("the same request has another fingerprint")
	}
	a, b := uuid.New(), uuid.New()
	if first, again := base.LockID(a), base.LockID(a); first == base.LockID(b) || first != again {
		t.Error("LockID must name the key per owner, the same each time")
	}
}
