package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/tokend/tokend/internal/oauth"
)

// storeLogEvery bounds how often a failing store is logged: one line per
// interval, carrying the count of failures since the previous line.
const storeLogEvery = 10 * time.Second

// storeHealth remembers the store failures requests met, so that /readyz
// reports them and the log is not flooded with one line per failure.
type storeHealth struct {
	mu          sync.Mutex
	lastFailure time.Time // zero: none yet
	lastLog     time.Time
	unlogged    int  // failures since lastLog
	down        bool // a failure was logged and no recovery since
}

// failed records a failure at now. It returns whether to log it and how
// many failures the line stands for.
func (h *storeHealth) failed(now time.Time) (log bool, count int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastFailure = now
	h.unlogged++
	if !h.lastLog.IsZero() && now.Sub(h.lastLog) < storeLogEvery {
		return false, 0
	}
	count, h.unlogged, h.lastLog, h.down = h.unlogged, 0, now, true
	return true, count
}

// recovered reports, once after failures were logged, that the store
// works again, with the failures not logged yet.
func (h *storeHealth) recovered() (bool, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return false, 0
	}
	n := h.unlogged
	h.down, h.unlogged, h.lastLog = false, 0, time.Time{}
	return true, n
}

// failingAt reports whether a request met a store failure less than
// storeRetryAfter before now: the instance is not ready while writes fail.
func (h *storeHealth) failingAt(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.lastFailure.IsZero() && now.Sub(h.lastFailure) < storeRetryAfter*time.Second
}

// storeFailed logs an unavailable store at a bounded rate.
func (s *Server) storeFailed(ctx context.Context, where string, err error) {
	if log, n := s.health.failed(s.now()); log {
		s.log.ErrorContext(ctx, "store unavailable", "where", where, "failures", n, "err", err)
	}
}

// handleReady answers /readyz: 200 when the store answers a probe write
// (store.Store.Ping) and no request has met a store failure in the last
// storeRetryAfter seconds; 503 otherwise. A failing store therefore takes
// the instance out of a load balancer's rotation while requests fail, and
// it comes back by itself once the probe succeeds and no request fails.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		if errors.Is(r.Context().Err(), context.Canceled) {
			return // the prober gave up: it learns nothing, and the store is not blamed
		}
		s.storeFailed(ctx, "readyz", err)
		oauth.WriteError(w, oauth.Answer{Status: http.StatusServiceUnavailable, RetryAfter: storeRetryAfter},
			oauth.TemporarilyUnavailable, "the store is unavailable")
		return
	}
	if s.health.failingAt(s.now()) {
		oauth.WriteError(w, oauth.Answer{Status: http.StatusServiceUnavailable, RetryAfter: storeRetryAfter},
			oauth.TemporarilyUnavailable, "requests are meeting store failures")
		return
	}
	if ok, n := s.health.recovered(); ok {
		s.log.InfoContext(ctx, "store available again", "failures", n)
	}
	_, _ = w.Write([]byte("ok\n"))
}
