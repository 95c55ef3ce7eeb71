package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/acme/taskmanager/internal/audit"
	"github.com/acme/taskmanager/internal/task"
)

// families gathers the server's metrics by name.
func (e *testEnv) families() map[string]*dto.MetricFamily {
	e.t.Helper()
	got, err := e.srv.deps.Metrics.Registry().Gather()
	if err != nil {
		e.t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range got {
		out[f.GetName()] = f
	}
	return out
}

// metricValue is the value of the counter or gauge name whose labels
// include labels; 0 when there is none.
func (e *testEnv) metricValue(name string, labels map[string]string) float64 {
	e.t.Helper()
	var sum float64
	for _, m := range e.families()[name].GetMetric() {
		if hasLabels(m, labels) {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// auditEvents reads the audit trail as the admin list does.
func (e *testEnv) auditEvents(f task.AuditFilter) []*task.AuditEvent {
	e.t.Helper()
	if f.Limit == 0 {
		f.Limit = 100
	}
	p, err := e.srv.deps.Audit.Find(context.Background(), f)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Items
}

// TestFailedLoginCountsAndAudits: one failed login is one more
// security_events_total{event="login_failed"}, one security log line and
// one audit row about the account tried, with the client's address and the
// request's id.
func TestFailedLoginCountsAndAudits(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	before := e.metricValue("security_events_total", map[string]string{"event": "login_failed"})
	r := e.loginAs(u.username, "Wrong-password-123", "192.0.2.77")
	r.errorCode(http.StatusUnauthorized, "authentication_failed")
	if got := e.metricValue("security_events_total", map[string]string{"event": "login_failed"}); got != before+1 {
		t.Fatalf("security_events_total{event=login_failed} = %v after one failed login, want %v", got, before+1)
	}
	rows := e.auditEvents(task.AuditFilter{UserID: uuid.MustParse(u.id), Event: "login_failed"})
	if len(rows) != 1 {
		t.Fatalf("%d audit rows for one failed login, want 1", len(rows))
	}
	row := rows[0]
	if row.ClientIP != "192.0.2.77" || row.Username != u.username || row.RequestID != r.Header().Get("X-Request-ID") {
		t.Fatalf("audit row %+v: want client_ip 192.0.2.77, username %s, request_id %s", row, u.username, r.Header().Get("X-Request-ID"))
	}
	if time.Since(row.Time) > time.Minute {
		t.Fatalf("audit row time %v is not now", row.Time)
	}
	// An unknown username is stored without a user, and never by the name tried.
	e.loginAs("nobody-"+rand.Text(), "Wrong-password-123", "192.0.2.78").status(http.StatusUnauthorized)
	anon := e.auditEvents(task.AuditFilter{Event: "login_failed"})
	if len(anon) != 2 || anon[0].ClientIP != "192.0.2.78" || anon[0].UserID != uuid.Nil || anon[0].Username != "" {
		t.Fatalf("failed login of an unknown user: %+v", anon[0])
	}
	if strings.Contains(fmt.Sprint(anon[0].Detail), "nobody-") {
		t.Fatal("the audit row holds the username tried")
	}
}

type auditPageJSON struct {
	Results  []auditJSON `json:"results"`
	Next     *string     `json:"next"`
	Previous *string     `json:"previous"`
}

// TestAuditListsFilterPaginateAndRefuse drives both lists: the admin's
// filters and pages, 403 for anyone else, and a user's own history that
// never shows another user's events.
func TestAuditListsFilterPaginateAndRefuse(t *testing.T) {
	e := newEnv(t, nil)
	admin, alice, bob := e.newAdmin(), e.newUser(), e.newUser()
	e.failLogins(alice.username, 3, "192.0.2.%d")
	e.loginAs(bob.username, "Wrong-password-123", "198.51.100.9").status(http.StatusUnauthorized)

	list := func(path string, u *user) auditPageJSON {
		t.Helper()
		return decodeAs[auditPageJSON](e.do(req{method: "GET", path: path, auth: u.bearer()}).status(http.StatusOK))
	}
	path := func(q url.Values) string { return "/api/admin/audit/?" + q.Encode() }

	// Refusals: a user who is no admin, and nobody at all.
	e.do(req{method: "GET", path: "/api/admin/audit/", auth: alice.bearer()}).errorCode(http.StatusForbidden, "permission_denied")
	e.do(req{method: "GET", path: "/api/admin/audit/"}).errorCode(http.StatusUnauthorized, "not_authenticated")
	e.do(req{method: "GET", path: "/api/me/events/"}).errorCode(http.StatusUnauthorized, "not_authenticated")

	// ?user= by id or by username (any case): alice's events only, newest first.
	byID := list(path(url.Values{"user": {alice.id}}), admin).Results
	byName := list(path(url.Values{"user": {strings.ToUpper(alice.username)}}), admin).Results
	if len(byID) < 5 || len(byName) != len(byID) {
		t.Fatalf("?user=: %d events by id, %d by username; want alice's registration, login and 3 failures", len(byID), len(byName))
	}
	kinds := map[string]int{}
	for i, x := range byID {
		if x.UserID == nil || x.UserID.String() != alice.id || *x.Username != alice.username {
			t.Fatalf("?user=%s listed %+v", alice.id, x)
		}
		if i > 0 && x.Time.After(byID[i-1].Time) {
			t.Fatal("audit events are not newest first")
		}
		kinds[x.Event]++
	}
	if kinds["user_registered"] != 1 || kinds["login_succeeded"] != 1 || kinds["login_failed"] != 3 {
		t.Fatalf("alice's events by kind: %v", kinds)
	}

	// ?event= with ?user=, then pages of one, forwards to the end and back.
	q := url.Values{"user": {alice.id}, "event": {"login_failed"}, "limit": {"1"}}
	var walked []string
	link := path(q)
	for n := 0; link != ""; n++ {
		if n > 5 {
			t.Fatal("the pages do not end")
		}
		p := list(strings.TrimPrefix(link, "http://example.com"), admin)
		for _, x := range p.Results {
			if x.Event != "login_failed" {
				t.Fatalf("?event=login_failed listed %s", x.Event)
			}
			walked = append(walked, x.ClientIP)
		}
		link = ""
		if p.Next != nil {
			link = *p.Next
		}
		if n == 1 && (p.Previous == nil || len(list(strings.TrimPrefix(*p.Previous, "http://example.com"), admin).Results) != 1) {
			t.Fatal("the second page links back to the first")
		}
	}
	if !slices.Equal(walked, []string{"192.0.2.3", "192.0.2.2", "192.0.2.1"}) {
		t.Fatalf("pages of one listed addresses %v, want alice's 3 failures newest first", walked)
	}

	// since (inclusive) and until (exclusive) bound the time.
	newest := byID[0].Time
	if got := list(path(url.Values{"user": {alice.id}, "since": {newest.Format(time.RFC3339Nano)}}), admin).Results; len(got) != 1 {
		t.Fatalf("?since=<the newest event> listed %d, want 1", len(got))
	}
	if got := list(path(url.Values{"user": {alice.id}, "until": {newest.Format(time.RFC3339Nano)}}), admin).Results; len(got) != len(byID)-1 {
		t.Fatalf("?until=<the newest event> listed %d, want %d", len(got), len(byID)-1)
	}

	// Bad input is the contract's 400, never a 500.
	for _, bad := range []struct{ query, field string }{
		{"event=nonsense", "event"}, {"since=yesterday", "since"}, {"until=2026-13-01", "until"},
		{"limit=0", "limit"}, {"limit=101", "limit"}, {"user=" + strings.Repeat("x", 151), "user"},
	} {
		e.do(req{method: "GET", path: "/api/admin/audit/?" + bad.query, auth: admin.bearer()}).fieldError(bad.field)
	}
	e.do(req{method: "GET", path: "/api/admin/audit/?cursor=garbage", auth: admin.bearer()}).errorCode(http.StatusBadRequest, "bad_request")
	e.do(req{method: "GET", path: "/api/me/events/?event=nonsense", auth: alice.bearer()}).fieldError("event")

	// A user's own history: their rows only, whatever ?user= says.
	for _, u := range []*user{alice, bob} {
		mine := list("/api/me/events/?user="+admin.id, u).Results
		if len(mine) == 0 {
			t.Fatalf("%s's history is empty", u.username)
		}
		for _, x := range mine {
			if x.UserID == nil || x.UserID.String() != u.id {
				t.Fatalf("%s's /api/me/events/ lists %+v", u.username, x)
			}
		}
	}
	bobs := list("/api/me/events/?event=login_failed", bob).Results
	if len(bobs) != 1 || bobs[0].ClientIP != "198.51.100.9" {
		t.Fatalf("bob's failed logins: %+v", bobs)
	}
}

// blockedStore is the real audit store behind a gate: inserts wait until
// the gate opens, as against a database that has stopped answering.
type blockedStore struct {
	task.AuditStore
	gate chan struct{}
}

func (s blockedStore) InsertAuditEvents(ctx context.Context, events []task.AuditEvent) error {
	select {
	case <-s.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.AuditStore.InsertAuditEvents(ctx, events)
}

// TestFullAuditQueueDropsWithoutSlowingRequests: with the writer stuck on
// the database and the queue full, requests that raise security events
// answer as fast as with a free queue; the events are dropped and counted.
func TestFullAuditQueueDropsWithoutSlowingRequests(t *testing.T) {
	gate := make(chan struct{})
	const queue = 8
	e := newEnv(t, map[string]string{"RATE_LIMIT_USER": "100000/minute"}, func(d *Deps) {
		d.Audit = audit.New(blockedStore{d.Audit.Store(), gate}, audit.Options{QueueSize: queue, BatchSize: 1,
			FlushEvery: time.Millisecond, Dropped: d.Metrics.AuditDropped, Written: d.Metrics.AuditWritten})
	})
	u := e.newUser() // its registration and login are the first events: the writer is stuck on one
	denied := func(n int) time.Duration {
		start := time.Now()
		for range n {
			// Each is a permission_denied event: one audit row each.
			e.do(req{method: "GET", path: "/api/admin/users/", auth: u.bearer(), ip: "192.0.2.50"}).status(http.StatusForbidden)
		}
		return time.Since(start) / time.Duration(n)
	}
	const n = 200
	full := denied(n)
	dropped := e.metricValue("audit_events_dropped_total", nil)
	if dropped < n-queue {
		t.Fatalf("audit_events_dropped_total = %v after %d events on a stuck queue of %d, want at least %d", dropped, n, queue, n-queue)
	}
	close(gate)
	waitFor(t, func() bool { return e.srv.deps.Audit.Len() == 0 }, "the queue to drain")
	free := denied(n)
	t.Logf("mean request with the audit queue full: %v; with it free: %v; dropped %v", full, free, dropped)
	if full > 3*free+5*time.Millisecond {
		t.Fatalf("a full audit queue slows requests: %v each, against %v with a free queue", full, free)
	}
}

// TestMetricsNotOnThePublicPort: the API answers /metrics as any unknown path.
func TestMetricsNotOnThePublicPort(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/metrics", "/metrics/"} {
		e.do(req{method: "GET", path: p}).errorCode(http.StatusNotFound, "not_found")
	}
}

// requestSeries counts the series of the metrics a request can add to.
func (e *testEnv) requestSeries() (n int, routes []string) {
	for name, f := range e.families() {
		if !strings.HasPrefix(name, "http_server_") && name != "security_events_total" && name != "rate_limit_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			n++
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" {
					routes = append(routes, l.GetValue())
				}
			}
		}
	}
	return n, routes
}

// TestMetricSeriesAreBounded floods random paths, ids, methods and
// usernames: the label sets take route patterns and known methods only,
// so the number of series does not grow with them.
func TestMetricSeriesAreBounded(t *testing.T) {
	e := newEnv(t, nil)
	u := e.newUser()
	flood := func(n int) {
		for range n {
			r := rand.Text()
			e.do(req{method: "GET", path: "/api/" + r + "/" + r}).status(http.StatusNotFound)
			e.do(req{method: "GET", path: "/api/tasks/" + uuid.NewString() + "/", auth: u.bearer(), ip: "192.0.2.1"}).status(http.StatusNotFound)
			e.do(req{method: "GET", path: "/api/tasks/" + r + "/", auth: u.bearer(), ip: "192.0.2.2"}).status(http.StatusNotFound)
			e.do(req{method: "BREW" + r[:4], path: "/api/tasks/"}).status(http.StatusMethodNotAllowed)
		}
		for range max(n/10, 1) {
			e.loginAs("nobody_"+rand.Text(), "Wrong-password-123", "").status(http.StatusUnauthorized)
		}
	}
	flood(2)
	before, _ := e.requestSeries()
	flood(40)
	after, routes := e.requestSeries()
	if after != before {
		t.Fatalf("request metrics grew from %d to %d series under random paths and usernames", before, after)
	}
	for _, r := range routes {
		if r != "unmatched" && !strings.HasPrefix(r, "/") || strings.Contains(r, "-") {
			t.Fatalf("route label %q is not a route pattern", r)
		}
	}
}

// TestRequestAndTraceIDsCorrelate: the request id and the trace id of an
// incoming traceparent are on every log line of the request, on its audit
// row and on the exemplar of its duration observation.
func TestRequestAndTraceIDsCorrelate(t *testing.T) {
	e := newEnv(t, nil)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := e.do(req{method: "POST", path: "/api/token/", ip: "192.0.2.60", body: map[string]string{"username": "nobody", "password": "Wrong-password-123"},
		headers: map[string]string{"X-Request-ID": "corr-1", "Traceparent": "00-" + trace + "-00f067aa0ba902b7-01"}})
	r.status(http.StatusUnauthorized)

	lines := 0
	for _, line := range strings.Split(e.logBuf.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["request_id"] != "corr-1" {
			continue
		}
		lines++
		if l["trace_id"] != trace {
			t.Errorf("log line without the trace id: %s", line)
		}
	}
	if lines < 2 {
		t.Fatalf("%d log lines carry the request id, want the access and the security line at least", lines)
	}
	rows := e.auditEvents(task.AuditFilter{Event: "login_failed"})
	if len(rows) != 1 || rows[0].RequestID != "corr-1" || rows[0].TraceID != trace {
		t.Fatalf("audit rows %+v, want one with request corr-1 and trace %s", rows, trace)
	}
	var ex *dto.Exemplar
	for _, m := range e.families()["http_server_request_duration_seconds"].GetMetric() {
		if hasLabels(m, map[string]string{"route": "/api/token", "status": "401", "method": "POST"}) {
			for _, b := range m.GetHistogram().GetBucket() {
				if b.GetExemplar() != nil {
					ex = b.GetExemplar()
				}
			}
		}
	}
	if ex == nil {
		t.Fatal("no exemplar on the duration histogram of POST /api/token 401")
	}
	got := map[string]string{}
	for _, l := range ex.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	if got["trace_id"] != trace || got["request_id"] != "corr-1" {
		t.Fatalf("exemplar labels %v", got)
	}
}

func TestTraceID(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, c := range []struct{ header, want string }{
		{"00-" + id + "-00f067aa0ba902b7-01", id},
		{"00-" + id + "-00f067aa0ba902b7-00", id},
		{"01-" + id + "-00f067aa0ba902b7-01-future", id}, // a later version may add fields
		{"", ""},
		{"00-" + id + "-00f067aa0ba902b7-01-x", ""}, // version 00 has exactly four fields
		{"ff-" + id + "-00f067aa0ba902b7-01", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"00-" + id + "-0000000000000000-01", ""},
		{"00-" + strings.ToUpper(id) + "-00f067aa0ba902b7-01", ""},
		{"00-" + id[:31] + "-00f067aa0ba902b7-01", ""},
		{"garbage", ""},
	} {
		if got := traceID(c.header); got != c.want {
			t.Errorf("traceID(%q) = %q, want %q", c.header, got, c.want)
		}
	}
}
