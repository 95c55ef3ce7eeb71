package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PoolStat is what the metrics read of a connection pool: the methods of
// pgxpool.Stat, so *pgxpool.Stat is one, and this package (imported by
// httpapi) needs no pgx.
type PoolStat interface {
	AcquireCount() int64
	AcquireDuration() time.Duration
	AcquiredConns() int32
	CanceledAcquireCount() int64
	ConstructingConns() int32
	EmptyAcquireCount() int64
	EmptyAcquireWaitTime() time.Duration
	IdleConns() int32
	MaxConns() int32
	TotalConns() int32
	NewConnsCount() int64
	MaxLifetimeDestroyCount() int64
	MaxIdleDestroyCount() int64
}

// poolCollector reads a pool's statistics on each scrape. (The names of
// github.com/IBM/pgxpoolprometheus fail `promtool check metrics`: counters
// without _total, durations in nanoseconds; these follow the conventions.)
type poolCollector struct {
	stat  func() PoolStat
	descs []poolMetric
}

type poolMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(PoolStat) float64
}

func newPoolCollector(stat func() PoolStat) *poolCollector {
	gauge := func(name, help string, v func(PoolStat) float64) poolMetric {
		return poolMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, v}
	}
	counter := func(name, help string, v func(PoolStat) float64) poolMetric {
		return poolMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, v}
	}
	return &poolCollector{stat: stat, descs: []poolMetric{
		gauge("pgxpool_acquired_connections", "Connections of the pool in use now.",
			func(s PoolStat) float64 { return float64(s.AcquiredConns()) }),
		gauge("pgxpool_idle_connections", "Idle connections of the pool.",
			func(s PoolStat) float64 { return float64(s.IdleConns()) }),
		gauge("pgxpool_constructing_connections", "Connections of the pool being opened.",
			func(s PoolStat) float64 { return float64(s.ConstructingConns()) }),
		gauge("pgxpool_total_connections", "Connections of the pool: acquired, idle and being opened.",
			func(s PoolStat) float64 { return float64(s.TotalConns()) }),
		gauge("pgxpool_max_connections", "Most connections the pool opens.",
			func(s PoolStat) float64 { return float64(s.MaxConns()) }),
		counter("pgxpool_acquires_total", "Connections acquired from the pool.",
			func(s PoolStat) float64 { return float64(s.AcquireCount()) }),
		counter("pgxpool_acquire_duration_seconds_total", "Time spent acquiring connections.",
			func(s PoolStat) float64 { return s.AcquireDuration().Seconds() }),
		counter("pgxpool_canceled_acquires_total", "Acquires given up because their context ended.",
			func(s PoolStat) float64 { return float64(s.CanceledAcquireCount()) }),
		counter("pgxpool_empty_acquires_total", "Acquires that waited because no connection was idle.",
			func(s PoolStat) float64 { return float64(s.EmptyAcquireCount()) }),
		counter("pgxpool_empty_acquire_wait_seconds_total", "Time acquires waited because no connection was idle.",
			func(s PoolStat) float64 { return s.EmptyAcquireWaitTime().Seconds() }),
		counter("pgxpool_new_connections_total", "Connections opened.",
			func(s PoolStat) float64 { return float64(s.NewConnsCount()) }),
		counter("pgxpool_max_lifetime_destroys_total", "Connections closed for reaching their maximum lifetime.",
			func(s PoolStat) float64 { return float64(s.MaxLifetimeDestroyCount()) }),
		counter("pgxpool_max_idle_destroys_total", "Connections closed for idling too long.",
			func(s PoolStat) float64 { return float64(s.MaxIdleDestroyCount()) }),
	}}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.descs {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	for _, m := range c.descs {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}
