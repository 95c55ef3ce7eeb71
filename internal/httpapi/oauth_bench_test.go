package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkOAuthTokenList compares GET /api/tasks/ (20 of 50 tasks) with
// an OAuth access token against the same request with our own access
// token, alternating iteration by iteration as BenchmarkRevocationOverhead
// does, and reports both means and their ratio (the target: within
// 5%).
func BenchmarkOAuthTokenList(b *testing.B) {
	o := newOAuthEnv(b, map[string]string{"RATE_LIMIT_USER": "1000000/second"})
	u := o.newUser()
	for i := range 50 {
		o.do(req{method: "POST", path: "/api/tasks/", auth: u.bearer(), body: map[string]any{"title": fmt.Sprintf("Task %d", i)}}).status(http.StatusCreated)
	}
	tok := o.codeFlow(b, o.config(o.register(b, nil), "tasks:read"), u)
	auths := [2]string{u.bearer(), "Bearer " + tok.AccessToken}
	var took [2]time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/api/tasks/", nil)
		r.Header.Set("Authorization", auths[n%2])
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		start := time.Now()
		o.srv.ServeHTTP(w, r)
		took[n%2] += time.Since(start)
		if w.Code != http.StatusOK {
			b.Fatalf("status = %d", w.Code)
		}
		n++
	}
	half := float64(max(n/2, 1))
	b.ReportMetric(float64(took[0].Nanoseconds())/half, "ns/ours")
	b.ReportMetric(float64(took[1].Nanoseconds())/half, "ns/oauth")
	b.ReportMetric(float64(took[1])/float64(max(took[0], 1)), "ratio")
}
