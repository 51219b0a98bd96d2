// Package hashgate is the admission control of password hashing: a
// memory budget shared by the argon2id checks that run at once, with a
// short first-in-first-out queue behind it (server.Config's HashMemory,
// HashQueue and HashWait). It was the hashGate of server/hashing.go; the
// server keeps the settings' defaults and answers ErrBusy with 503
// temporarily_unavailable and Retry-After.
package hashgate

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// errTooCostly reports a check that needs more memory than the whole
// budget: it is refused rather than run beyond it (the server answers it
// 500 and logs it).
var errTooCostly = errors.New("hashgate: password hash needs more memory than the whole budget")

// ErrBusy refuses a check that found the queue full or waited longer
// than the gate's longest wait.
var ErrBusy = errors.New("hashgate: too many password checks in progress")

// Gate is the admission control of password hashing: a semaphore over
// a memory budget, each check weighing the memory its hash's parameters
// ask for, with a short first-in-first-out queue behind it. A check that
// finds the queue full, or waits longer than the longest wait, is refused
// with ErrBusy; one whose context ends while it waits leaves the queue at
// once. It is safe for concurrent use.
type Gate struct {
	budget   int64 // bytes
	queueMax int
	wait     time.Duration

	mu    sync.Mutex
	used  int64     // bytes granted
	queue list.List // of *waiter, oldest first

	refused *prometheus.CounterVec // by reason: queue_full, wait
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when n bytes are granted
}

// New returns a Gate over budget bytes, with room for queueMax waiting
// checks (0: none), each of which waits at most wait.
func New(budget int64, queueMax int, wait time.Duration) *Gate {
	return &Gate{budget: budget, queueMax: queueMax, wait: wait,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_password_checks_refused_total",
			Help: "Password checks refused with 503 for want of hashing memory, by reason (queue_full, wait).",
		}, []string{"reason"})}
}

// Register adds the gate's metrics to reg:
// tokend_password_checks_refused_total, tokend_password_hash_memory_bytes
// and tokend_password_hash_waiting.
func (g *Gate) Register(reg *prometheus.Registry) {
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
func (g *Gate) state() (used int64, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used, g.queue.Len()
}

// Acquire grants n bytes of the budget, waiting in the queue if need be.
// It returns a release function (which may be called more than once, from
// the goroutine that acquired) or an error: ErrBusy if the queue is full
// or the wait too long, ctx's error if ctx ends first, or another error
// if n exceeds the whole budget.
func (g *Gate) Acquire(ctx context.Context, n int64) (release func(), err error) {
	if n > g.budget {
		return nil, fmt.Errorf("%w: %d MiB, budget %d MiB", errTooCostly, n>>20, g.budget>>20)
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
		return nil, ErrBusy
	}
	w := &waiter{n: n, ready: make(chan struct{})}
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
		err = ErrBusy
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

func (g *Gate) releaser(n int64) func() {
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
func (g *Gate) grantLocked() {
	for e := g.queue.Front(); e != nil; e = g.queue.Front() {
		w := e.Value.(*waiter)
		if g.used+w.n > g.budget {
			return
		}
		g.used += w.n
		g.queue.Remove(e)
		close(w.ready)
	}
}
