package throttle

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

// The throttle across a fleet (Fleet): the instances that share a store which
// implements store.FailureCounter (postgres, redis) count each failure
// there too, on the failure path only, and lock a key from the larger of
// their own count and the fleet's; and, with store.FamiliarSources, they
// share where each user has logged in from, so that the exemption of a
// user's usual sources from her account's lock holds on all of them.
//
// The in-process tables stay the first layer and the only one a request
// consults before its credential is checked, but for one case: a locked
// account, asked for by a source this instance does not know as
// familiar, asks the store whether the fleet knows it (the lock is rare,
// and the answer is then remembered here). A success of a password marks
// its source familiar in the store when this instance had not marked it
// within familiarRefresh (an hour): one round trip per user, source and
// instance an hour, beside the login's own writes; a client's success
// never reaches the store for the throttle, nor does a locked key's 429.
// A failure does, once: its keys are counted in the store in one round
// trip, and each count that the fleet has beyond this instance's is
// applied to this instance's table, with the lock the count-th failure
// starts. An instance thus learns of a lock at the latest at its own next
// failure of the key: an attacker spread over N instances gets at most
// the fleet's limit plus N-1 attempts before every instance refuses,
// instead of N times the limit. The store's keys hold nothing in clear:
// 16 bytes of HMAC-SHA-256 under a key derived from the current server
// secret, which every instance shares (Keys); a source marked
// familiar under an older secret of the ring is still found, until that
// secret is retired. A store that cannot be reached while counting
// or marking changes nothing for the request: the instance counts (and
// remembers) alone, and logs it at most once a minute; one that cannot
// be asked whether a source is familiar leaves the lock on.
//
// Per instance, by design, because sharing it would cost successes a
// round trip: a success's reset of the pair's count, which clears this
// instance's count only: the pair's failures before the success still
// count in the fleet until they leak away (one per Window/PerPair), so a
// user who mistyped, logged in and mistypes again may wait Delay after
// fewer than PerPair new failures.

// fleetTimeout bounds the round trip of a failure's count: a store that
// hangs delays a failure's answer by at most this much.
const fleetTimeout = time.Second

// fleetLogEvery is how often at most a failure to count in the store is
// logged.
const fleetLogEvery = time.Minute

// Keys are the HMAC keys of the fleet's store keys, derived from the
// server secrets that every instance shares. They must be safe for
// concurrent use.
type Keys interface {
	// FleetKey returns the key of the current server secret, which
	// counts failures and marks familiar sources.
	FleetKey() []byte
	// FleetKeys returns the keys of every secret of the ring, the
	// current one's first, under which a familiar source may have been
	// marked.
	FleetKeys() [][]byte
}

// Fleet counts failures in a store.FailureCounter under keys no one can
// map back to a username or an address without the server secret. It is
// safe for concurrent use.
type Fleet struct {
	counter   store.FailureCounter
	familiars store.FamiliarSources // nil: familiar sources are per instance
	// keys are the HMAC-SHA-256 keys of the store's keys.
	keys    Keys
	log     *slog.Logger
	lastLog atomic.Int64 // Unix ns of the last logged error
}

// NewFleet returns a Fleet that counts failures in c and keeps familiar
// sources in fs (nil: each instance remembers them alone), under store
// keys made with keys; nil if c is nil.
func NewFleet(c store.FailureCounter, fs store.FamiliarSources, keys Keys, log *slog.Logger) *Fleet {
	if c == nil {
		return nil
	}
	return &Fleet{counter: c, familiars: fs, keys: keys, log: log}
}

// fleetKey is the store's key of (k, l, src, account): 16 bytes of an
// HMAC, as throttleKey sees it (IPv6 by /64, the layer's parts only).
func (f *Fleet) fleetKey(k Kind, l layer, src netip.Addr, account string) string {
	return fleetKeyUnder(f.keys.FleetKey(), k, l, src, account)
}

// fleetKeyUnder is fleetKey under the HMAC key key.
func fleetKeyUnder(key []byte, k Kind, l layer, src netip.Addr, account string) string {
	m := hmac.New(sha256.New, key)
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
func (t *Throttler) countInFleet(ctx context.Context, k Kind, src netip.Addr, account string, fails []fleetFailure, now time.Time) {
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
		f.warn(ctx, "throttle: cannot count a failure in the store; this instance counts alone", err, now)
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
var errFleetCounts = errors.New("throttle: the store returned the wrong number of failure counts")

// warn logs err with msg, at most once per fleetLogEvery.
func (f *Fleet) warn(ctx context.Context, msg string, err error, now time.Time) {
	ns := now.UnixNano()
	if last := f.lastLog.Load(); ns-last >= int64(fleetLogEvery) && f.lastLog.CompareAndSwap(last, ns) {
		f.log.WarnContext(ctx, msg, "err", err)
	}
}

// familiar reports whether the fleet's store knows src as a familiar
// source of account (a password's, already lower-cased), marked under
// any secret of the ring (one round trip each, the current's first, on
// the locked path only). Not knowing,
// or a store that cannot answer within fleetTimeout, is false: the lock
// stays on.
func (f *Fleet) familiar(ctx context.Context, src netip.Addr, account string, now time.Time) bool {
	if f.familiars == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, fleetTimeout)
	defer cancel()
	for _, key := range f.keys.FleetKeys() { // the current secret's first
		ok, err := f.familiars.Familiar(ctx, fleetKeyUnder(key, Password, layerAccount, src, account), fleetKeyUnder(key, Password, layerSource, src, ""))
		if err != nil {
			f.warn(ctx, "throttle: cannot ask the store for a familiar source; the account's lock holds", err, now)
			return false
		}
		if ok {
			return true
		}
	}
	return false
}

// markFamiliar marks src as a familiar source of account in the fleet's
// store, for familiarFor. The success has happened: a client that hangs
// up must not keep it from being marked.
func (f *Fleet) markFamiliar(ctx context.Context, src netip.Addr, account string, now time.Time) {
	if f.familiars == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fleetTimeout)
	defer cancel()
	if err := f.familiars.MarkFamiliar(ctx, f.fleetKey(Password, layerAccount, src, account), f.fleetKey(Password, layerSource, src, ""), familiarFor); err != nil {
		f.warn(ctx, "throttle: cannot mark a familiar source in the store; this instance remembers it alone", err, now)
	}
}
