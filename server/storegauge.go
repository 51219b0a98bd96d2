package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storeProbeTimeout bounds the store probe of a metrics scrape, as
// /readyz's.
const storeProbeTimeout = 2 * time.Second

// storeGauges is the collector of the store's health, measured at each
// scrape of /metrics:
//
//   - tokend_store_up: 1 when the store answers a probe write
//     (store.Store.Ping) and no request met a store failure in the last
//     storeRetryAfter seconds, the verdict of /readyz; 0 otherwise.
//   - tokend_store_ping_seconds: how long that probe took (up to
//     storeProbeTimeout, when it fails by timing out).
type storeGauges struct {
	s        *Server
	up, ping *prometheus.Desc
}

func newStoreGauges(s *Server) *storeGauges {
	return &storeGauges{s: s,
		up:   prometheus.NewDesc("tokend_store_up", "1 when the store answers a probe write and no request met a store failure in the last seconds (as /readyz), 0 otherwise; measured at the scrape.", nil, nil),
		ping: prometheus.NewDesc("tokend_store_ping_seconds", "How long the scrape's store probe took.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (g *storeGauges) Describe(ch chan<- *prometheus.Desc) { ch <- g.up; ch <- g.ping }

// Collect implements prometheus.Collector: it probes the store.
func (g *storeGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), storeProbeTimeout)
	defer cancel()
	start := time.Now()
	err := g.s.store.Ping(ctx)
	took := time.Since(start)
	up := 0.0
	if err == nil && !g.s.health.failingAt(g.s.now()) {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(g.up, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(g.ping, prometheus.GaugeValue, took.Seconds())
}
