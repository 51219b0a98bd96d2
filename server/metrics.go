package server

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg       *prometheus.Registry
	issued    *prometheus.CounterVec // by grant
	rotations *prometheus.CounterVec // by outcome
	revoked   *prometheus.CounterVec // by reason
	// revokedAccess counts access tokens put on the deny-list.
	revokedAccess prometheus.Counter
	failures      *prometheus.CounterVec   // by endpoint and OAuth error code
	latency       *prometheus.HistogramVec // by endpoint
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_tokens_issued_total", Help: "Access tokens issued, by grant.",
		}, []string{"grant"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_refresh_rotations_total", Help: "Refresh-token presentations, by outcome (rotated, repeated, reuse_detected).",
		}, []string{"outcome"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_families_revoked_total", Help: "Refresh-token families revoked, by reason.",
		}, []string{"reason"}),
		revokedAccess: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokend_access_tokens_revoked_total", Help: "Access tokens without a family (client_credentials) put on the deny-list until they expire.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_request_failures_total", Help: "Failed requests, by endpoint and error code.",
		}, []string{"endpoint", "error"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tokend_request_duration_seconds", Help: "Request latency, by endpoint.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"endpoint"}),
	}
	m.reg.MustRegister(m.issued, m.rotations, m.revoked, m.revokedAccess, m.failures, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// statusWriter records the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
	code   string // OAuth error code, set by writeError
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// requestInfo is what handlers learn about a request that the access log
// reports: the authenticated client, and whether a segment of the path
// was refused (pathID), which keeps the path out of the log.
type requestInfo struct {
	client      string
	pathRefused bool
}

type requestInfoKey struct{}

// noteClient records the authenticated client of the request for the
// access log.
func noteClient(ctx context.Context, id string) {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		ri.client = id
	}
}

// instrument wraps an endpoint with its latency and failure metrics and,
// if Config.AccessLog is set, its access-log line.
func (s *Server) instrument(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	obs := s.metrics.latency.WithLabelValues(endpoint)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		latency := time.Since(start)
		obs.Observe(latency.Seconds())
		if sw.status >= 400 {
			code := sw.code
			if code == "" {
				code = http.StatusText(sw.status)
			}
			s.metrics.failures.WithLabelValues(endpoint, code).Inc()
		}
		if s.cfg.AccessLog {
			// The path and the client id, never the query, a header or the
			// body: nothing secret. A path with a refused segment is
			// logged as its route's pattern: the value goes to no log.
			path := r.URL.Path
			if info.pathRefused {
				_, path, _ = strings.Cut(r.Pattern, " ")
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", path), slog.Int("status", cmp.Or(sw.status, http.StatusOK)),
				slog.String("client", info.client), slog.Duration("latency", latency))
		}
	}
}
