// Package throttle slows down the guessing of client secrets and
// passwords: it counts a token server's failed credential checks per
// source address, per (source, account) and per account, locks a key that
// reaches its limit with an exponential delay, exempts a user's familiar
// sources from her account's lock, and, with a Fleet, counts failures and
// familiar sources in a store the instances share.
//
// It was server/ratelimit.go (the policy: Config, Throttler, Check),
// server/throttle.go (the tables, now tables.go) and server/fleet.go. The
// server begins a Check for every request that presents a credential
// (Throttler.Begin), answers a wait with 429 and Retry-After, and ends
// the Check with its Outcome once the credential is checked.
package throttle

import (
	"cmp"
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Config configures how the server slows down guessing
// (server.Config.Throttle). It counts failures, never successes: a failed
// client authentication (a wrong client secret, or a secret for an
// unknown or public client) and a wrong username or password. Client
// secrets and passwords count apart.
//
// A credential is checked only if none of its keys is locked: the
// request's source address (server.Config.TrustedProxies says which one that
// is), the pair (source, account) and, for passwords, the account (the
// username) across all sources. Once a key holds its limit of failures,
// each further failure locks it, for Delay and then twice as long each
// time up to MaxDelay (the exponential lockout of OWASP's Authentication
// Cheat Sheet), and a locked key's attempts are answered 429 with
// Retry-After before anything is checked, right or wrong, so that a lock
// reveals nothing. Failures are forgotten one by one, limit of them per
// Window.
//
// What it promises a legitimate client or user: the right credential,
// presented from where it has authenticated before, is never refused for
// anyone else's failures, on any instance, after any restart, however
// the others flood:
//
//   - A client secret has no account lock. It is 256 random bits (tokend
//     refuses an operator's secret shorter than 32 characters), which no
//     guesser spread over many addresses finds, so locking the client
//     would only let anyone shut it out; its source and pair locks slow
//     a guesser at its own addresses, and a client's new address (a new
//     pod) is never locked for failures elsewhere.
//   - A password's account lock exempts the sources that authenticated as
//     that user within the last 30 days (OWASP's "device cookie" idea,
//     with the source address as the device): the lock stops a guesser
//     spread over many addresses, and only a source new to the user
//     waits. The last 8 such sources of each user are kept, so that no
//     flood of successes (another account's, from any number of
//     addresses) pushes one out; with a store.FamiliarSources (postgres,
//     redis) they are kept in the store, so that every instance knows
//     them, also after a restart.
//   - Successes never count as failures, also when many arrive at once:
//     how many checks may be in flight is bounded by the hashing gate
//     (package hashgate; server.Config's HashMemory, HashQueue), not by
//     the throttle.
//
// Refresh tokens are not throttled: a refresh token carries a MAC under
// the server secret, checked before any store access, so there is
// nothing to guess, and a token that cannot work (unknown, forged,
// damaged, of a deleted or ended family) is always answered invalid_grant
// (RFC 6749 §5.2), which sends its holder to log in again instead of
// into a loop of 429s.
//
// Keys behind one address share its budget: with clients behind a proxy,
// list the proxy in server.Config.TrustedProxies; a web app that sends its users'
// passwords from its own address must forward their addresses the same
// way, or it is one source for all its users.
//
// State lives in the process's memory, bounded by MaxEntries, and a
// restart forgets it. Instances that share a store which can count
// (server.Config.FailureCounter; postgres and redis) also count each
// failure there, so that a fleet behind a load balancer locks a key after
// about as many failures as one instance: see Fleet for what is shared
// and what stays per instance.
type Config struct {
	// Disabled turns the throttle off: nothing is counted or refused.
	Disabled bool
	// PerSource is how many failures one source address may have before
	// its attempts wait. IPv6 addresses count per /64. Default 50.
	PerSource int
	// PerPair is how many failures one source may have at one account
	// (client ID or username) before its attempts at that account wait.
	// A success resets it (the instance's count; the fleet's leaks away,
	// see Fleet). Default 5.
	PerPair int
	// PerAccount is how many failures one username may have from all
	// sources before attempts at it wait, except from its familiar
	// sources. Default 20.
	PerAccount int
	// Window is how long a key takes to forget its limit of failures: it
	// forgets one every Window/limit. Default 1h.
	Window time.Duration
	// Delay is the first lock, MaxDelay the longest (at most 24h).
	// Defaults 1s and 15m.
	Delay, MaxDelay time.Duration
	// MaxEntries bounds the memory: at most this many failure records
	// and as many users' familiar sources (each rounded up to a multiple
	// of 16), under 250 bytes for one of each: 25 MB at the default of
	// 100,000.
	MaxEntries int
}

// Defaults of Config.
const (
	defaultPerSource  = 50
	defaultPerPair    = 5
	defaultPerAccount = 20
	defaultWindow     = time.Hour
	defaultDelay      = time.Second
	defaultMaxDelay   = 15 * time.Minute
	defaultMaxEntries = 100_000
	// familiarFor is how long a success keeps its source exempt from the
	// account lock.
	familiarFor = 30 * 24 * time.Hour
)

// withDefaults fills in c's zero settings and checks them. Its errors
// name the setting, not the package: the server prefixes
// "server: Config.Throttle: ".
func (c Config) withDefaults() (Config, error) {
	if c.PerSource < 0 || c.PerPair < 0 || c.PerAccount < 0 || c.Window < 0 || c.Delay < 0 || c.MaxDelay < 0 || c.MaxEntries < 0 {
		return c, errors.New("negative setting")
	}
	c.PerSource = cmp.Or(c.PerSource, defaultPerSource)
	c.PerPair = cmp.Or(c.PerPair, defaultPerPair)
	c.PerAccount = cmp.Or(c.PerAccount, defaultPerAccount)
	c.Window = cmp.Or(c.Window, defaultWindow)
	c.Delay = cmp.Or(c.Delay, defaultDelay)
	c.MaxDelay = cmp.Or(c.MaxDelay, defaultMaxDelay)
	c.MaxEntries = cmp.Or(c.MaxEntries, defaultMaxEntries)
	switch {
	case c.MaxDelay < c.Delay:
		return c, errors.New("MaxDelay is shorter than Delay")
	case c.MaxDelay > 24*time.Hour:
		return c, errors.New("MaxDelay is longer than 24h")
	case max(c.PerSource, c.PerPair, c.PerAccount) > maxLimit:
		return c, errors.New("limit above 1,000,000")
	}
	return c, nil
}

// maxLimit bounds Config's limits.
const maxLimit = 1_000_000

// Throttler applies a Config. A nil *Throttler lets everything through.
// It is safe for concurrent use.
type Throttler struct {
	seed     maphash.Seed
	fleet    *Fleet // nil: this instance counts alone
	failures failureTable
	familiar familiarTable
	log      *slog.Logger
}

// New returns the Throttler of c, nil if it is disabled. With fl (which
// may be nil), failures are also counted across the fleet. It fails on a
// setting out of bounds.
func New(c Config, fl *Fleet, log *slog.Logger) (*Throttler, error) {
	c, err := c.withDefaults()
	if err != nil || c.Disabled {
		return nil, err
	}
	perShard := (c.MaxEntries + tableShards - 1) / tableShards
	t := &Throttler{seed: maphash.MakeSeed(), fleet: fl, log: log}
	t.failures.perShard, t.familiar.perShard = perShard, perShard
	t.failures.delay, t.failures.maxDelay = int64(c.Delay), int64(c.MaxDelay)
	t.familiar.within = int64(familiarFor)
	for l, limit := range [numLayers]int{layerSource: c.PerSource, layerPair: c.PerPair, layerAccount: c.PerAccount} {
		t.failures.rules[l] = rule{limit: uint32(limit), interval: max(int64(c.Window)/int64(limit), 1)}
	}
	return t, nil
}

// Outcome is how a checked credential turned out.
type Outcome uint8

// The outcomes of a Check.
const (
	OK         Outcome = iota // the right credential
	Failed                    // a wrong credential
	Unfinished                // not checked to the end (the store failed): neither
)

// Check is one check of a client secret or a password from a source for
// an account, from Throttler.Begin to End. The zero Check (of a nil
// Throttler) counts nothing.
type Check struct {
	t       *Throttler
	kind    Kind
	src     netip.Addr
	account string
	keys    [numLayers]uint64
}

// Begin starts a check of a credential of kind k for account (a client
// ID or a username, compared case-insensitively) from src. It returns how
// long the request must wait instead, 0 if it may go ahead; a Check that
// went ahead ends with End. A locked account lets a familiar source through:
// one this instance knows, or else one the fleet's store knows (a round
// trip, on the locked path only).
func (t *Throttler) Begin(ctx context.Context, k Kind, src netip.Addr, account string, now time.Time) (Check, time.Duration) {
	if t == nil {
		return Check{}, 0
	}
	if k == Password {
		account = strings.ToLower(account)
	}
	a := Check{t: t, kind: k, src: src, account: account}
	for _, l := range k.layers() {
		a.keys[l] = throttleKey(t.seed, k, l, src, account)
	}
	ns := now.UnixNano()
	wait := max(t.failures.lockedFor(a.keys[layerSource], ns), t.failures.lockedFor(a.keys[layerPair], ns))
	if wait == 0 && k == Password {
		if w := t.failures.lockedFor(a.keys[layerAccount], ns); w > 0 && !t.familiarSource(ctx, &a, now) {
			wait = w
		}
	}
	if wait > 0 {
		return Check{}, time.Duration(wait)
	}
	return a, 0
}

// familiarSource reports whether a's source authenticated as a's account
// within familiarFor: as this instance remembers, or as the fleet's
// store does, which this instance then remembers too.
func (t *Throttler) familiarSource(ctx context.Context, a *Check, now time.Time) bool {
	ns := now.UnixNano()
	if t.familiar.seen(a.keys[layerAccount], a.keys[layerSource], ns) {
		return true
	}
	if t.fleet == nil || !t.fleet.familiar(ctx, a.src, a.account, now) {
		return false
	}
	t.familiar.mark(a.keys[layerAccount], a.keys[layerSource], ns)
	return true
}

// End records how the check turned out; a second End does nothing. A failure is also counted in
// the fleet, and a password's success marks its source familiar there
// when this instance had not marked it within familiarRefresh (one store
// round trip each, bounded by fleetTimeout; ctx's values only, not its
// end: what happened counts even if the client hung up).
func (a *Check) End(ctx context.Context, r Outcome, now time.Time) {
	if a.t == nil {
		return
	}
	ns := now.UnixNano()
	switch r {
	case Failed:
		var fails []fleetFailure
		for _, l := range a.kind.layers() {
			if _, locked := a.t.failures.fail(a.keys[l], l, ns); locked {
				a.t.logLock(a.kind, l, a.src, a.account)
			}
			fails = append(fails, fleetFailure{layer: l, key: a.keys[l]})
		}
		a.t.countInFleet(ctx, a.kind, a.src, a.account, fails, now)
	case OK:
		a.t.failures.forget(a.keys[layerPair])
		if a.kind == Password && a.t.familiar.mark(a.keys[layerAccount], a.keys[layerSource], ns) && a.t.fleet != nil {
			a.t.fleet.markFamiliar(ctx, a.src, a.account, now)
		}
	}
	a.t = nil
}

// logLock logs a key that has reached its limit (OWASP: log lockouts).
// Usernames are logged only for an account lock: a user who typed a
// password into the username field does not fail twenty times.
func (t *Throttler) logLock(k Kind, l layer, src netip.Addr, account string) {
	attrs := []any{"credential", k.String(), "key", l.String()}
	if l != layerAccount {
		attrs = append(attrs, "source", src.String())
	}
	if l != layerSource && (k != Password || l == layerAccount) {
		attrs = append(attrs, "account", account)
	}
	t.log.Warn("throttle: failure limit reached; attempts wait", attrs...)
}
