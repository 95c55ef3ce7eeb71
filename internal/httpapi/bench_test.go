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

// BenchmarkRevocationOverhead alternates the same authenticated list with
// and without the revocation check, iteration by iteration, so drift in
// the shared machine and the database hits both alike. It reports both
// means and their ratio.
func BenchmarkRevocationOverhead(b *testing.B) {
	e := newEnv(b, map[string]string{"RATE_LIMIT_USER": "1000000/second"})
	u := e.newUser()
	for i := range 50 {
		e.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": fmt.Sprintf("Task %d", i)}}).status(http.StatusCreated)
	}
	checked := e.srv.deps.Revocations
	var with, without time.Duration
	n := 0
	for b.Loop() {
		e.srv.deps.Revocations = checked
		if n%2 == 1 {
			e.srv.deps.Revocations = neverRevoked{}
		}
		r := httptest.NewRequest("GET", "/api/tasks/", nil)
		r.Header.Set("Authorization", u.bearer())
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		start := time.Now()
		e.srv.ServeHTTP(w, r)
		if n%2 == 1 {
			without += time.Since(start)
		} else {
			with += time.Since(start)
		}
		if w.Code != http.StatusOK {
			b.Fatalf("status = %d", w.Code)
		}
		n++
	}
	e.srv.deps.Revocations = checked
	half := float64(max(n/2, 1))
	b.ReportMetric(float64(with.Nanoseconds())/half, "ns/checked")
	b.ReportMetric(float64(without.Nanoseconds())/half, "ns/unchecked")
	b.ReportMetric(float64(with)/float64(max(without, 1)), "ratio")
}

// BenchmarkObservabilityOverhead alternates requests between two servers
// on one database, one with metrics and the audit trail (as serve runs)
// and one without, iteration by iteration as BenchmarkRevocationOverhead
// does, and reports both means and their ratio: GET /api/tasks/ (20 of 50
// tasks), and GET /healthz, which touches no database and so shows the
// middleware's own cost.
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
		var took [2]time.Duration
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			i := n % 2
			r := httptest.NewRequest("GET", path, nil)
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			r.RemoteAddr = "192.0.2.1:1234"
			w := httptest.NewRecorder()
			start := time.Now()
			servers[i].ServeHTTP(w, r)
			took[i] += time.Since(start)
			if w.Code != http.StatusOK {
				b.Fatalf("status = %d", w.Code)
			}
			n++
		}
		half := float64(max(n/2, 1))
		b.ReportMetric(float64(took[0].Nanoseconds())/half, "ns/observed")
		b.ReportMetric(float64(took[1].Nanoseconds())/half, "ns/unobserved")
		b.ReportMetric(float64(took[0])/float64(max(took[1], 1)), "ratio")
	}
	b.Run("list", func(b *testing.B) { run(b, "/api/tasks/", u.bearer()) })
	b.Run("healthz", func(b *testing.B) { run(b, "/healthz", "") })
}
