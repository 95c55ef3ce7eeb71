package metrics

import (
	"os/exec"
	"testing"

	"github.com/acme/taskmanager/internal/promtest"
)

// TestAlertRules checks deploy/prometheus: the rules parse, each fires on
// the synthetic series of alerts_test.yml that should raise it and on no
// other, and the example configuration loads them.
func TestAlertRules(t *testing.T) {
	promtool := promtest.Promtool(t)
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
