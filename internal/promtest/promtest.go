// Package promtest finds promtool for the tests that check metrics and
// alert rules with it.
package promtest

import (
	"os"
	"os/exec"
	"testing"
)

// Promtool returns the path of promtool: PROMTOOL, else the one on PATH
// (Debian's prometheus package, which make test installs).
func Promtool(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{os.Getenv("PROMTOOL"), "promtool"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	tb.Fatal("no promtool: run `make test` (it installs Debian's prometheus package) or set PROMTOOL")
	return ""
}
