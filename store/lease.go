package store

import (
	"context"
	"time"
)

// Leaser is implemented by stores that several server instances share
// (postgres, redis): a lease lets one instance of the fleet do a periodic
// job (DeleteExpired, by `tokend serve`) while the others stand by. Stores
// without it (memory, sqlite) serve one instance, which does the job
// itself.
//
// A lease is held by one holder at a time, until ttl after its last
// Lease call, judged by the store's clock (now() in PostgreSQL, PX in
// Redis) so that instances whose clocks differ agree on who holds it.
// Nothing fences a holder that stalls past its ttl: a job run under a
// lease must be safe to run twice (DeleteExpired is).
type Leaser interface {
	// Lease takes the lease called name for holder, or renews it if
	// holder holds it, for ttl (positive; the store rounds it to whole
	// milliseconds, at least one). It returns false, changing nothing, if
	// another holder holds it and its ttl has not passed.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (held bool, err error)
	// Release gives the lease up if holder holds it, so that another
	// holder may take it at once; otherwise it does nothing.
	Release(ctx context.Context, name, holder string) error
}
