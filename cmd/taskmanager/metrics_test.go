package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/acme/taskmanager/internal/pgtest"

	"github.com/acme/taskmanager/internal/promtest"
)

// metricsAddr waits for the "metrics listening" line of the log file and
// returns its address.
func metricsAddr(t *testing.T, logFile string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		raw, _ := os.ReadFile(logFile)
		for _, line := range strings.Split(string(raw), "\n") {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "metrics listening" {
				return l.Addr
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the log never says where metrics listen")
	return ""
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	r, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestMetricsScrapePassesPromtool serves for real, sends some traffic and
// scrapes METRICS_ADDR: the exposition passes `promtool check metrics`,
// holds every metric the alert rules use, and the public port has no
// /metrics.
func TestMetricsScrapePassesPromtool(t *testing.T) {
	tool := promtest.Promtool(t)
	logFile := filepath.Join(t.TempDir(), "server.log")
	env := map[string]string{
		"DATABASE_URL":    pgtest.URL(t),
		"JWT_SIGNING_KEY": strings.Repeat("metrics-", 8),
		"LOG_FILE":        logFile,
		"METRICS_ADDR":    "127.0.0.1:0",
	}
	if err := run(context.Background(), []string{"taskmanager", "migrate"}, envFunc(env), nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	addr, _ := startServe(t, env)
	base, metrics := "http://"+addr, "http://"+metricsAddr(t, logFile)+"/metrics"

	if code, _ := callJSON(t, base, "POST", "/api/register/", "", map[string]string{"username": "carol", "password": "correct-horse-battery-staple"}); code != 201 {
		t.Fatalf("register: %d", code)
	}
	if code, _ := callJSON(t, base, "POST", "/api/token/", "", map[string]string{"username": "carol", "password": "wrong-horse-battery-staple"}); code != 401 {
		t.Fatalf("failed login: %d", code)
	}
	code, tok := callJSON(t, base, "POST", "/api/token/", "", map[string]string{"username": "carol", "password": "correct-horse-battery-staple"})
	if code != 200 {
		t.Fatalf("login: %d", code)
	}
	if code, _ := callJSON(t, base, "GET", "/api/tasks/", tok["access"].(string), nil); code != 200 {
		t.Fatalf("list: %d", code)
	}
	if resp, _ := get(t, base+"/metrics", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the public port = %d, want 404", resp.StatusCode)
	}

	resp, text := get(t, metrics, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lint := exec.Command(tool, "check", "metrics")
	lint.Stdin = strings.NewReader(text)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	for _, want := range []string{
		`http_server_request_duration_seconds_bucket{method="GET",route="/api/tasks",status="200",le="0.1"}`,
		`security_events_total{event="login_failed"} 1`,
		`security_events_total{event="token_reuse_detected"} 0`,
		`rate_limit_decisions_total{budget="login",outcome="allowed"} 2`,
		`http_server_active_requests 0`,
		`taskmanager_database_up 1`,
		`taskmanager_revocation_listener_up`,
		`taskmanager_build_info{goversion="`,
		`pgxpool_acquires_total`,
		`audit_events_dropped_total 0`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	// Every metric an alert rule reads is exported (taskmanager_redis_up
	// only with REDIS_URL; up comes from Prometheus itself).
	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`\b((?:security|http_server|taskmanager|audit)_[a-z_]+)`).FindAllString(string(rules), -1) {
		name = strings.TrimSuffix(name, "_count")
		if name != "taskmanager_redis_up" && !strings.Contains(text, "\n"+name) {
			t.Errorf("alerts.yml reads %s, which the server does not export", name)
		}
	}
	// OpenMetrics carries the exemplars: the request id of an observation.
	_, om := get(t, metrics, http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}})
	if !regexp.MustCompile(`http_server_request_duration_seconds_bucket\{[^}]*\} \d+ # \{request_id="[0-9a-f]+"\}`).MatchString(om) {
		t.Error("the OpenMetrics scrape has no exemplar with a request id")
	}
}

// TestMetricsOff: METRICS_ADDR set but empty serves no metrics.
func TestMetricsOff(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "server.log")
	env := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "JWT_SIGNING_KEY": strings.Repeat("off-key-", 8),
		"LOG_FILE": logFile, "METRICS_ADDR": "off"}
	startServe(t, env)
	raw, _ := os.ReadFile(logFile)
	if bytes.Contains(raw, []byte("metrics listening")) {
		t.Fatal("METRICS_ADDR=off still serves metrics")
	}
}
