package metrics

import (
	"os"
	"os/exec"
	"testing"
)

// findPromtool finds promtool: PROMTOOL, else the one on PATH (Debian's
// prometheus package, which make test installs).
func findPromtool(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("PROMTOOL"), "promtool"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("no promtool: run `make test` (it installs Debian's prometheus package) or set PROMTOOL")
	return ""
}

// TestAlertRules checks deploy/prometheus: the rules parse, each fires on
// the synthetic series of alerts_test.yml that should raise it and on no
// other, and the example configuration loads them.
func TestAlertRules(t *testing.T) {
	promtool := findPromtool(t)
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../../deploy/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
