package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"time"

	"github.com/tokend/tokend/store"
)

// gcLease names the lease under which one instance of a fleet deletes
// ended families.
const gcLease = "gc"

// expirer is the part of the store the GC uses.
type expirer interface {
	DeleteExpired(ctx context.Context, before time.Time) (int, error)
}

// runGC deletes ended families every interval until ctx ends. With a
// leaser (a store that instances share: postgres, redis) only the
// instance holding the "gc" lease does, so that a fleet deletes once per
// interval, not once per instance: each instance asks for the lease at
// each tick, which renews it for its holder, for twice the interval, so
// that a holder that misses one tick keeps it and one that stops is
// replaced within two intervals. When ctx ends the lease is released, so
// that another instance takes over at its next tick. Without a leaser
// (memory, sqlite: one instance) it deletes at every tick. holder names
// this instance (gcHolder).
func runGC(ctx context.Context, log *slog.Logger, every time.Duration, st expirer, leaser store.Leaser, holder string) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	if leaser != nil {
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := leaser.Release(ctx, gcLease, holder); err != nil {
				log.Warn("release the gc lease", "err", err)
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if leaser != nil {
			held, err := leaser.Lease(ctx, gcLease, holder, 2*every)
			if err != nil {
				log.Warn("take the gc lease", "err", err)
				continue
			}
			if !held {
				continue // another instance deletes
			}
		}
		// Revoked families are kept for a day for `tokend families list --all`.
		n, err := st.DeleteExpired(ctx, time.Now().Add(-24*time.Hour))
		if err != nil {
			log.Warn("delete ended families", "err", err)
		} else if n > 0 {
			log.Info("deleted ended families", "count", n)
		}
	}
}

// gcHolder names this process as a lease holder: its host and process
// and a random part, so that a lease's row says who holds it and two
// processes never share a name.
func gcHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return host + "/" + hex.EncodeToString(b)
}
