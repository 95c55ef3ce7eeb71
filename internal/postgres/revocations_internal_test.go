package postgres

import (
	"testing"
	"time"
)

// TestMemoryTrustedOnlyWhileTheListenerIsHeard: a listener whose
// connection died silently stops being trusted within staleAfter, so
// checks go to the database instead of a memory that no longer learns.
func TestMemoryTrustedOnlyWhileTheListenerIsHeard(t *testing.T) {
	r := &Revocations{}
	if r.Live() {
		t.Fatal("a listener that never connected is trusted")
	}
	r.alive()
	if !r.Live() {
		t.Fatal("a listener heard just now is not trusted")
	}
	r.heard.Store(time.Now().Add(-staleAfter - time.Second).UnixNano())
	if r.Live() {
		t.Fatalf("a listener silent for more than %v is still trusted", staleAfter)
	}
}
