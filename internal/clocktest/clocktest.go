// Package clocktest provides a settable clock for tests.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a wall clock that moves only when told to. It is safe for
// concurrent use; pass its Now method where code takes a func() time.Time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock set to t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
