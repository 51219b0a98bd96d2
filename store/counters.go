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

// FamiliarPerAccount is how many sources a FamiliarSources keeps per
// account: the ones marked last.
const FamiliarPerAccount = 8

// FamiliarSources is implemented by stores that several server instances
// share (postgres, redis): where each account has authenticated from
// lately, so that the throttle's exemption of an account's usual sources
// from its lock holds on every instance and across restarts, as the
// failure counts that make the lock do (FailureCounter). account and
// source are opaque keys of at most 64 bytes, derived with a keyed hash
// as Failure.Key is, so that the store holds no username or address in
// clear.
//
// Per account, at most FamiliarPerAccount sources are kept, the ones
// marked last: marks of one account never push out another's, so no
// flood of successes elsewhere can make an account's usual source
// unfamiliar. Times are the store's clock.
type FamiliarSources interface {
	// MarkFamiliar records that source has just authenticated as account,
	// for keep (positive): the mark lasts until keep from now, the store's
	// now. It drops the account's marks beyond the FamiliarPerAccount
	// marked last. Errors of an unreachable store wrap ErrUnavailable.
	MarkFamiliar(ctx context.Context, account, source string, keep time.Duration) error
	// Familiar reports whether source's mark for account lasts still.
	// Errors of an unreachable store wrap ErrUnavailable.
	Familiar(ctx context.Context, account, source string) (bool, error)
}
