package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/taskmanager/internal/task"
)

// neverRevoked switches the revocation check off: the baseline that shows
// what the check costs.
type neverRevoked struct{}

func (neverRevoked) IsRevoked(context.Context, uuid.UUID, time.Time) (bool, error) { return false, nil }

// BenchmarkAuthenticatedList measures GET /api/tasks/ (20 of 50 tasks)
// through the whole handler chain, per credential kind.
func BenchmarkAuthenticatedList(b *testing.B) {
	e := newEnv(b, map[string]string{"RATE_LIMIT_USER": "1000000/second"})
	u := e.newUser()
	for i := range 50 {
		e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": fmt.Sprintf("Task %d", i)}}).status(http.StatusCreated)
	}
	key := e.newKey(u, "tasks:read")

	run := func(b *testing.B, auth string) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("GET", "/api/tasks/", nil)
			r.Header.Set("Authorization", auth)
			r.RemoteAddr = "192.0.2.1:1234"
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status = %d", w.Code)
			}
		}
	}
	b.Run("bearer", func(b *testing.B) { run(b, u.bearer()) })
	b.Run("api_key", func(b *testing.B) { run(b, "Api-Key "+key) })
	b.Run("bearer_no_revocation_check", func(b *testing.B) {
		saved := e.srv.deps.Revocations
		e.srv.deps.Revocations = neverRevoked{}
		defer func() { e.srv.deps.Revocations = saved }()
		run(b, u.bearer())
	})
}

// BenchmarkCreateTask measures POST /api/tasks/ through the whole handler
// chain, with the body the load benchmark sends.
func BenchmarkCreateTask(b *testing.B) {
	e := newEnv(b, map[string]string{"RATE_LIMIT_USER": "1000000/second", "MAX_TASKS_PER_USER": "10000000"})
	u := e.newUser()
	const body = `{"title": "Bench task created by wrk", "description": "load test", "completed": false}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/api/tasks/", strings.NewReader(body))
		r.Header.Set("Authorization", u.bearer())
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != http.StatusCreated {
			b.Fatalf("status = %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkCreateTaskIdempotent is BenchmarkCreateTask with a new
// Idempotency-Key on every request: the cost of storing the answer.
func BenchmarkCreateTaskIdempotent(b *testing.B) {
	e := newEnv(b, map[string]string{"RATE_LIMIT_USER": "1000000/second", "MAX_TASKS_PER_USER": "10000000"})
	u := e.newUser()
	const body = `{"title": "Bench task created by wrk", "description": "load test", "completed": false}`
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r := httptest.NewRequest("POST", "/api/tasks/", strings.NewReader(body))
		r.Header.Set("Authorization", u.bearer())
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", "bench-"+strconv.Itoa(i))
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != http.StatusCreated {
			b.Fatalf("status = %d: %s", w.Code, w.Body)
		}
	}
}

// alternate sends GET path to two ways of serving it, iteration by
// iteration, so drift in the shared machine and the database hits both
// alike, and reports both means (ns/<name>) and their ratio, the first
// way's over the second's. way(i) readies way i and returns the handler
// and the Authorization header (none when empty) to use.
func alternate(b *testing.B, names [2]string, path string, way func(i int) (http.Handler, string)) {
	var took [2]time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		i := n % 2
		h, auth := way(i)
		r := httptest.NewRequest("GET", path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		took[i] += time.Since(start)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: status = %d", names[i], w.Code)
		}
		n++
	}
	half := float64(max(n/2, 1))
	b.ReportMetric(float64(took[0].Nanoseconds())/half, "ns/"+names[0])
	b.ReportMetric(float64(took[1].Nanoseconds())/half, "ns/"+names[1])
	b.ReportMetric(float64(took[0])/float64(max(took[1], 1)), "ratio")
}

// BenchmarkRevocationOverhead alternates the same authenticated list with
// and without the revocation check.
func BenchmarkRevocationOverhead(b *testing.B) {
	e := newEnv(b, map[string]string{"RATE_LIMIT_USER": "1000000/second"})
	u := e.newUser()
	for i := range 50 {
		e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": fmt.Sprintf("Task %d", i)}}).status(http.StatusCreated)
	}
	checked := e.srv.deps.Revocations
	defer func() { e.srv.deps.Revocations = checked }()
	check := [2]task.Revocations{checked, neverRevoked{}}
	alternate(b, [2]string{"checked", "unchecked"}, "/api/tasks/", func(i int) (http.Handler, string) {
		e.srv.deps.Revocations = check[i]
		return e.srv, u.bearer()
	})
}

// BenchmarkObservabilityOverhead alternates requests between two servers
// on one database, one with metrics and the audit trail (as serve runs)
// and one without: GET /api/tasks/ (20 of 50 tasks), and GET /healthz,
// which touches no database and so shows the middleware's own cost.
func BenchmarkObservabilityOverhead(b *testing.B) {
	env := map[string]string{"RATE_LIMIT_USER": "1000000/second"}
	on := newEnv(b, env)
	off := newEnvOn(b, on.db, on.dsn, env, func(d *Deps) { d.Metrics, d.Audit = nil, nil })
	u := on.newUser()
	for i := range 50 {
		on.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": fmt.Sprintf("Task %d", i)}}).status(http.StatusCreated)
	}
	servers := [2]*Server{on.srv, off.srv}
	run := func(b *testing.B, path, auth string) {
		alternate(b, [2]string{"observed", "unobserved"}, path, func(i int) (http.Handler, string) { return servers[i], auth })
	}
	b.Run("list", func(b *testing.B) { run(b, "/api/tasks/", u.bearer()) })
	b.Run("healthz", func(b *testing.B) { run(b, "/healthz", "") })
}
