package server

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokend/tokend/internal/password"
)

// PasswordParams are argon2id's cost parameters (RFC 9106 §3.1): Memory
// (m, KiB), Time (t, passes) and Threads (p, lanes). See
// Config.PasswordParams.
type PasswordParams = password.Params

// Defaults of the password-hashing settings of Config.
const (
	DefaultHashMemory = 128 << 20 // bytes
	DefaultHashQueue  = 64
	DefaultHashWait   = 5 * time.Second
)

// hashRetryAfter is the Retry-After, in seconds, of a login refused for
// want of hashing memory. At the default settings the queue drains in
// about a second on two cores (64 checks of some 30 ms of CPU each).
const hashRetryAfter = 1

// errHashTooCostly reports a stored hash whose check needs more memory than
// the whole hashing budget: it is refused rather than run beyond it.
var errHashTooCostly = errors.New("server: password hash needs more memory than Config.HashMemory")

// hashGate is the admission control of password hashing: a semaphore over
// a memory budget, each check weighing the memory its hash's parameters
// ask for, with a short first-in-first-out queue behind it. A check that
// finds the queue full, or waits longer than the longest wait, is refused
// with 503 temporarily_unavailable and Retry-After; one whose context ends
// while it waits leaves the queue at once. It is safe for concurrent use.
type hashGate struct {
	budget   int64 // bytes
	queueMax int
	wait     time.Duration

	mu    sync.Mutex
	used  int64     // bytes granted
	queue list.List // of *hashWaiter, oldest first

	refused *prometheus.CounterVec // by reason: queue_full, wait
}

type hashWaiter struct {
	n     int64
	ready chan struct{} // closed when n bytes are granted
}

func newHashGate(budget int64, queueMax int, wait time.Duration) *hashGate {
	return &hashGate{budget: budget, queueMax: queueMax, wait: wait,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_password_checks_refused_total",
			Help: "Password checks refused with 503 for want of hashing memory, by reason (queue_full, wait).",
		}, []string{"reason"})}
}

// register adds the gate's metrics to reg.
func (g *hashGate) register(reg *prometheus.Registry) {
	reg.MustRegister(g.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokend_password_hash_memory_bytes", Help: "Memory held by running password checks.",
		}, func() float64 { used, _ := g.state(); return float64(used) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokend_password_hash_waiting", Help: "Password checks waiting for hashing memory.",
		}, func() float64 { _, waiting := g.state(); return float64(waiting) }),
	)
}

// state returns the bytes granted and the number of waiters.
func (g *hashGate) state() (used int64, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used, g.queue.Len()
}

// acquire grants n bytes of the budget, waiting in the queue if need be.
// It returns a release function (which may be called more than once, from
// the goroutine that acquired) or an error: an *Error 503 if the queue is
// full or the wait too long, ctx's error if ctx ends first, or
// errHashTooCostly if n exceeds the whole budget.
func (g *hashGate) acquire(ctx context.Context, n int64) (release func(), err error) {
	if n > g.budget {
		return nil, fmt.Errorf("%w: %d MiB, budget %d MiB", errHashTooCostly, n>>20, g.budget>>20)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	if g.queue.Len() == 0 && g.used+n <= g.budget {
		g.used += n
		g.mu.Unlock()
		return g.releaser(n), nil
	}
	if g.queue.Len() >= g.queueMax {
		g.mu.Unlock()
		g.refused.WithLabelValues("queue_full").Inc()
		return nil, errUnavailable("too many logins in progress; retry later", hashRetryAfter)
	}
	w := &hashWaiter{n: n, ready: make(chan struct{})}
	elem := g.queue.PushBack(w)
	g.mu.Unlock()

	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case <-w.ready:
		return g.releaser(n), nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		g.refused.WithLabelValues("wait").Inc()
		err = errUnavailable("too many logins in progress; retry later", hashRetryAfter)
	}
	g.mu.Lock()
	select {
	case <-w.ready:
		// Granted in the meantime: give it back.
		g.used -= n
	default:
		g.queue.Remove(elem)
	}
	// Either way, the waiters behind may fit now.
	g.grantLocked()
	g.mu.Unlock()
	return nil, err
}

func (g *hashGate) releaser(n int64) func() {
	done := false
	return func() {
		if done {
			return
		}
		done = true
		g.mu.Lock()
		g.used -= n
		g.grantLocked()
		g.mu.Unlock()
	}
}

// grantLocked grants memory to the waiters in order for as long as the
// oldest one fits: a check that needs much memory is not overtaken by
// smaller ones forever.
func (g *hashGate) grantLocked() {
	for e := g.queue.Front(); e != nil; e = g.queue.Front() {
		w := e.Value.(*hashWaiter)
		if g.used+w.n > g.budget {
			return
		}
		g.used += w.n
		g.queue.Remove(e)
		close(w.ready)
	}
}

// errGone answers a login whose client went away while its password was
// being checked: nobody reads the answer, and no session is written.
func errGone() *Error {
	return errUnavailable("the request was cancelled", 1)
}

// hashingDefaults fills in and checks the password-hashing settings of
// cfg.
func hashingDefaults(cfg *Config) error {
	if cfg.PasswordParams == (PasswordParams{}) {
		cfg.PasswordParams = password.DefaultParams()
	}
	if err := cfg.PasswordParams.Validate(); err != nil {
		return fmt.Errorf("server: Config.PasswordParams: %w", err)
	}
	if cfg.HashMemory == 0 {
		cfg.HashMemory = DefaultHashMemory
	}
	if need := cfg.PasswordParams.MemoryBytes(); cfg.HashMemory < need {
		return fmt.Errorf("server: Config.HashMemory (%d bytes) cannot hold one hash of %v (%d bytes)", cfg.HashMemory, cfg.PasswordParams, need)
	}
	switch {
	case cfg.HashQueue == 0:
		cfg.HashQueue = DefaultHashQueue
	case cfg.HashQueue < 0:
		cfg.HashQueue = 0
	}
	if cfg.HashWait <= 0 {
		cfg.HashWait = DefaultHashWait
	}
	return nil
}
