// Package metrics is taskmanager's Prometheus instrumentation: the metrics
// the other packages feed, the collectors that read state on each scrape,
// and the handler that serves them on their own listener. It wraps
// client_golang; nothing here writes the exposition format itself.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds one registry and the metrics fed from the request path.
// Every method is safe for concurrent use; a nil *Metrics records nothing,
// so a server built without metrics pays nothing for them.
type Metrics struct {
	reg            *prometheus.Registry
	duration       *prometheus.HistogramVec
	active         prometheus.Gauge
	securityEvents *prometheus.CounterVec
	throttle       *prometheus.CounterVec
	auditDropped   prometheus.Counter
	auditWritten   prometheus.Counter
	auditFailed    prometheus.Counter

	mu        sync.RWMutex
	observers map[seriesKey]*series // the duration histogram's children, by label values
}

// series is one child of the duration histogram, and when each of its
// buckets last took an exemplar.
type series struct {
	obs       prometheus.Observer
	exemplars [len(durationBuckets) + 1]atomic.Int64 // unix nanoseconds; the last is +Inf
}

// durationBuckets are the upper bounds of the duration histogram, in seconds.
var durationBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// exemplarEvery is how often a bucket of a series takes a new exemplar.
// Only the latest one of a bucket is exposed, and a scrape comes every 15
// seconds or so: replacing it on every request would cost allocations on
// the request path for nothing.
const exemplarEvery = time.Second

type seriesKey struct {
	method, route string
	status        int
}

// The label sets of the request metrics are bounded by construction: a
// method outside this list is "other", a request no route matched has the
// route "unmatched", and a status is one of the few a handler writes.
var knownMethods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodPatch: http.MethodPatch, http.MethodDelete: http.MethodDelete,
	http.MethodOptions: http.MethodOptions,
}

// Unmatched is the route label of a request that matched no route (a 404).
const Unmatched = "unmatched"

// New makes the registry with the Go runtime, process and build
// information collectors and the request, security and audit metrics.
// version is the binary's version (main.version).
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := &Metrics{
		reg: reg,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Time from the start of a request to the end of its answer, by method, chi route pattern and status code.",
			Buckets: durationBuckets[:],
		}, []string{"method", "route", "status"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_server_active_requests",
			Help: "Requests being served right now.",
		}),
		securityEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "security_events_total",
			Help: "Security events (the security log lines and audit rows), by event.",
		}, []string{"event"}),
		throttle: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rate_limit_decisions_total",
			Help: "Throttling decisions, by budget (limiter name) and outcome (allowed or throttled).",
		}, []string{"budget", "outcome"}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_events_dropped_total",
			Help: "Audit events not stored because the audit queue was full or the database refused the batch.",
		}),
		auditWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_events_written_total",
			Help: "Audit events stored in the database.",
		}),
		auditFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_write_failures_total",
			Help: "Batches of audit events the database refused.",
		}),
		observers: map[seriesKey]*series{},
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "taskmanager_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	reg.MustRegister(m.duration, m.active, m.securityEvents, m.throttle, m.auditDropped, m.auditWritten, m.auditFailed, buildInfo)
	return m
}

// Handler serves the registry in the Prometheus text format, or
// OpenMetrics (with the exemplars) to a scraper that asks for it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: m.reg})
}

// Registry is where further collectors go (tests gather from it too).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Begin counts a request in flight; ObserveRequest ends it.
func (m *Metrics) Begin() {
	if m != nil {
		m.active.Inc()
	}
}

// ObserveRequest records one answered request, and ends Begin's count.
// route is the chi route pattern ("" when none matched), never the raw
// path. requestID and traceID (either may be empty) label the exemplar of
// the observation's bucket, at most once a second per bucket.
func (m *Metrics) ObserveRequest(method, route string, status int, d time.Duration, requestID, traceID string) {
	if m == nil {
		return
	}
	m.active.Dec()
	s := m.series(method, route, status)
	v := d.Seconds()
	b := sort.SearchFloat64s(durationBuckets[:], v)
	now := time.Now().UnixNano()
	last := s.exemplars[b].Load()
	if now-last < int64(exemplarEvery) || !s.exemplars[b].CompareAndSwap(last, now) {
		s.obs.Observe(v)
		return
	}
	s.obs.(prometheus.ExemplarObserver).ObserveWithExemplar(v, exemplar(requestID, traceID))
}

// exemplar labels an observation with its request and trace ids, as far
// as they fit the exemplar's 128 runes (both are ASCII).
func exemplar(requestID, traceID string) prometheus.Labels {
	l := make(prometheus.Labels, 2)
	used := 0
	if traceID != "" {
		l["trace_id"] = traceID
		used = len("trace_id") + len(traceID)
	}
	if requestID != "" && used+len("request_id")+len(requestID) <= prometheus.ExemplarMaxRunes {
		l["request_id"] = requestID
	}
	return l
}

// series is the child of the duration histogram for one label set, made
// once: after that a request costs a map lookup under a read lock, with no
// label slice or map built.
func (m *Metrics) series(method, route string, status int) *series {
	raw := seriesKey{method, route, status}
	m.mu.RLock()
	s, ok := m.observers[raw]
	m.mu.RUnlock()
	if ok {
		return s
	}
	k := raw
	known, isKnown := knownMethods[method]
	k.method = known // the map's copy of the name, not the request's
	if !isKnown {
		k.method = "other"
	}
	if route == "" {
		k.route = Unmatched
	}
	if status < 100 || status > 599 {
		k.status = 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok = m.observers[k]
	if !ok {
		s = &series{obs: m.duration.WithLabelValues(k.method, k.route, strconv.Itoa(k.status))}
		m.observers[k] = s
	}
	if isKnown {
		// Routes and statuses are few; methods are not (a client may send
		// any token), so only a known one is remembered as sent.
		raw.method = known
		m.observers[raw] = s
	}
	return s
}

// SecurityEvent counts one security event.
func (m *Metrics) SecurityEvent(event string) {
	if m != nil {
		m.securityEvents.WithLabelValues(event).Inc()
	}
}

// KnownSecurityEvents starts the counters of events at 0, so a rule on
// their increase sees the first one.
func (m *Metrics) KnownSecurityEvents(events ...string) {
	if m == nil {
		return
	}
	for _, e := range events {
		m.securityEvents.WithLabelValues(e)
	}
}

// Decision is the counter of one budget's decisions of one outcome.
// Resolve it once (when a limiter is built) and Inc it per request.
func (m *Metrics) Decision(budget string, allowed bool) prometheus.Counter {
	outcome := "throttled"
	if allowed {
		outcome = "allowed"
	}
	if m == nil {
		return discard{}
	}
	return m.throttle.WithLabelValues(budget, outcome)
}

// AuditDropped counts n audit events lost.
func (m *Metrics) AuditDropped(n int) {
	if m != nil {
		m.auditDropped.Add(float64(n))
	}
}

// AuditWritten counts n audit events stored.
func (m *Metrics) AuditWritten(n int) {
	if m != nil {
		m.auditWritten.Add(float64(n))
	}
}

// AuditFailed counts one batch the database refused.
func (m *Metrics) AuditFailed() {
	if m != nil {
		m.auditFailed.Inc()
	}
}

// Health registers a gauge that reads 1 while healthy() says so, else 0,
// asked on every scrape.
func (m *Metrics) Health(name, help string, healthy func() bool) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		if healthy() {
			return 1
		}
		return 0
	}))
}

// Gauge registers a gauge read from value on every scrape.
func (m *Metrics) Gauge(name, help string, value func() float64) {
	if m != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value))
	}
}

// Database registers the database's readiness, asked with ping (bounded to
// a second) on each scrape, and the statistics of its connection pool.
func (m *Metrics) Database(ping func(context.Context) error, stat func() PoolStat) {
	if m == nil {
		return
	}
	m.Health("taskmanager_database_up", "1 while the database answers a ping within a second (what /readyz reports), else 0.", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return ping(ctx) == nil
	})
	m.reg.MustRegister(newPoolCollector(stat))
}

// discard is the counter of a nil *Metrics.
type discard struct{ prometheus.Counter }

func (discard) Inc()        {}
func (discard) Add(float64) {}
