package store

import (
	"context"
	"time"
)

// Failure is one failed attempt to count with a FailureCounter.
type Failure struct {
	// Key names what failed: an opaque string of at most 64 bytes that
	// the caller derives with a keyed hash (the server uses HMAC-SHA-256
	// under a key derived from its shared secret), so that the store never
	// holds a username or an address in clear and no one who can read it
	// can tell which account a count is about.
	Key string
	// Forget is how long the key takes to forget one failure: its
	// failures leak away one per Forget (a leaky bucket). Positive.
	Forget time.Duration
}

// FailureCounter is implemented by stores that several server instances
// share (postgres, redis), so that the throttle of failed attempts counts
// them across the whole fleet. Single-instance stores (memory, sqlite) do
// not implement it: the server's own memory counts for them.
//
// A key's count is a leaky bucket kept as one time, its theoretical
// arrival time tat (the Generic Cell Rate Algorithm): counting a failure
// sets tat = max(tat, now) + Forget, and the count is then
// ceil((tat - now) / Forget). It forgets exactly like the server's
// in-memory table, one failure per Forget, so the two can be compared.
// now is the store's clock, never the caller's, so that instances whose
// clocks differ still count alike. A key whose tat has passed holds
// nothing and the store may drop it.
type FailureCounter interface {
	// CountFailures counts one failure at each key of fs, which must be
	// distinct, in one round trip, and returns each key's count
	// afterwards (the failures not yet forgotten, this one included), in
	// the order of fs. It is called only on the failure path: a success
	// never reaches the store for the throttle. Errors of an unreachable
	// store wrap ErrUnavailable; the caller then counts locally only.
	CountFailures(ctx context.Context, fs []Failure) ([]int64, error)
}
