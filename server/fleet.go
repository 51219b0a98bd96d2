package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend/store"
)

// The throttle across a fleet: the instances that share a store which
// implements store.FailureCounter (postgres, redis) count each failure
// there too, on the failure path only, and lock a key from the larger of
// their own count and the fleet's.
//
// The in-process tables stay the first layer and the only one a request
// consults before its credential is checked: a success never waits for
// the store, and neither does a locked key's 429. Only a failure does,
// once: its keys are counted in the store in one round trip, and each
// count that the fleet has beyond this instance's is applied to this
// instance's table, with the lock the count-th failure starts. An
// instance thus learns of a lock at the latest at its own next failure
// of the key: an attacker spread over N instances gets at most the
// fleet's limit plus N-1 attempts before every instance refuses, instead
// of N times the limit. A refresh failure of a key already locked here
// is not counted in the store again (its lock grows here), so a flood of
// junk from a locked source costs the store nothing more. The store's
// keys hold nothing in clear: 16 bytes of HMAC-SHA-256 under a key
// derived from the current server secret, which every instance shares
// (secrets.go). A store that
// cannot be reached while counting changes nothing for the request: the
// instance counts alone, and logs it at most once a minute.
//
// Per instance, by design, because sharing them would cost successes a
// round trip:
//
//   - attempts in flight (the reservations of password checks, which
//     last milliseconds);
//   - familiar sources, the account lock's exemption, which a success
//     marks: a source is familiar to the instances it authenticated
//     through, and an account lock that the fleet's count spreads to
//     another instance holds there for a familiar source it has not
//     seen;
//   - a success's reset of the pair's count, which clears this
//     instance's count only: the pair's failures before the success
//     still count in the fleet until they leak away (one per
//     Window/PerPair), so a user who mistyped, logged in and mistypes
//     again may wait Delay after fewer than PerPair new failures.

// fleetTimeout bounds the round trip of a failure's count: a store that
// hangs delays a failure's answer by at most this much.
const fleetTimeout = time.Second

// fleetLogEvery is how often at most a failure to count in the store is
// logged.
const fleetLogEvery = time.Minute

// fleet counts failures in a store.FailureCounter under keys no one can
// map back to a username or an address without the server secret.
type fleet struct {
	counter store.FailureCounter
	// key returns the HMAC-SHA-256 key of the keys, derived from the
	// server secret that every instance shares (refreshKeys.fleetKey).
	key     func() []byte
	log     *slog.Logger
	lastLog atomic.Int64 // Unix ns of the last logged error
}

// newFleet returns a fleet on c, nil if c is nil.
func newFleet(c store.FailureCounter, key func() []byte, log *slog.Logger) *fleet {
	if c == nil {
		return nil
	}
	return &fleet{counter: c, key: key, log: log}
}

// fleetKey is the store's key of (k, l, src, account): 16 bytes of an
// HMAC, as throttleKey sees it (IPv6 by /64, the layer's parts only).
func (f *fleet) fleetKey(k kind, l layer, src netip.Addr, account string) string {
	m := hmac.New(sha256.New, f.key())
	m.Write([]byte{byte(k), byte(l)})
	if l != layerAccount {
		if src.Is6() {
			p, _ := src.Prefix(64)
			src = p.Addr()
		}
		a := src.As16()
		m.Write(a[:])
	}
	if l != layerSource {
		m.Write([]byte(account))
	}
	return string(m.Sum(nil)[:16])
}

// fleetFailure is one failed key to count in the fleet.
type fleetFailure struct {
	layer layer
	key   uint64 // in the local table
}

// countInFleet counts one failure of each of fails in the store and applies the
// fleet's counts to t's table. It never fails: a store error is logged.
func (t *throttler) countInFleet(ctx context.Context, k kind, src netip.Addr, account string, fails []fleetFailure, now time.Time) {
	f := t.fleet
	if f == nil || len(fails) == 0 {
		return
	}
	fs := make([]store.Failure, len(fails))
	for i, x := range fails {
		fs[i] = store.Failure{Key: f.fleetKey(k, x.layer, src, account), Forget: time.Duration(t.failures.rules[x.layer].interval)}
	}
	// The failure has happened: a client that hangs up must not keep it
	// from being counted.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fleetTimeout)
	defer cancel()
	counts, err := f.counter.CountFailures(ctx, fs)
	if err == nil && len(counts) != len(fs) {
		err = errFleetCounts
	}
	if err != nil {
		ns := now.UnixNano()
		if last := f.lastLog.Load(); ns-last >= int64(fleetLogEvery) && f.lastLog.CompareAndSwap(last, ns) {
			f.log.WarnContext(ctx, "throttle: cannot count a failure in the store; this instance counts alone", "err", err)
		}
		return
	}
	for i, x := range fails {
		if t.failures.raise(x.key, x.layer, counts[i], now.UnixNano()) {
			t.logLock(k, x.layer, src, account)
		}
	}
}

// errFleetCounts reports a store that answered with a count too few or
// too many.
var errFleetCounts = errors.New("server: the store returned the wrong number of failure counts")
