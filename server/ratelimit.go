package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Throttle configures how the server slows down guessing. It counts
// failures, never successes: a failed client authentication (a wrong
// client secret, or a secret for an unknown or public client), a wrong
// username or password, and a refresh token that is unknown or spent
// (invalid_grant on the refresh_token grant). Client secrets, passwords
// and refresh tokens count apart.
//
// A client secret or password is checked only if none of its keys is
// locked: the request's source address (Config.TrustedProxies says which
// one that is), the pair (source, account) and the account (the client ID
// or the username) across all sources. Once a key holds its limit of
// failures, each further failure locks it, for Delay and then twice as
// long each time up to MaxDelay (the exponential lockout of OWASP's
// Authentication Cheat Sheet), and a locked key's attempts are answered
// 429 with Retry-After before anything is checked, right or wrong, so
// that a lock reveals nothing. Failures are forgotten one by one, limit
// of them per Window.
//
// An account lock must not let an attacker lock the real user out at
// the price of one request per lock: the pair (source, account) is what
// locks first, and a source that has authenticated as the account within
// the last 30 days is exempt from the account's lock (OWASP's "device
// cookie" idea, with the source address as the device). The account lock
// thus stops a guesser spread over many addresses without shutting out
// the clients and users where they usually are; only a new source waits.
//
// Refresh tokens are 256 random bits: no one guesses one, and a valid one
// always goes through. Their failures count per source and, for a client
// that authenticated, per client (a request with only a client_id never
// spends the client's budget); while a key is locked an unknown token is
// answered 429 instead of invalid_grant. A token the store knows but that
// has ended (revoked, expired, spent) is always answered invalid_grant,
// so that its holder learns to log in again.
//
// Keys behind one address share its budget: with clients behind a proxy,
// list the proxy in Config.TrustedProxies; a web app that sends its users'
// passwords from its own address must forward their addresses the same
// way, or it is one source for all its users.
//
// State lives in the process's memory, bounded by MaxEntries, and a
// restart forgets it. Instances that share a store which can count
// (Config.FailureCounter; postgres and redis) also count each failure
// there, so that a fleet behind a load balancer locks a key after about
// as many failures as one instance: see fleet.go for what is shared and
// what stays per instance. Successes never reach the store for the
// throttle.
type Throttle struct {
	// Disabled turns the throttle off: nothing is counted or refused.
	Disabled bool
	// PerSource is how many failures one source address may have before
	// its attempts wait. IPv6 addresses count per /64. Default 50.
	PerSource int
	// PerPair is how many failures one source may have at one account
	// before its attempts at that account wait. A success resets it
	// (the instance's count; the fleet's leaks away, see fleet.go).
	// Default 5.
	PerPair int
	// PerAccount is how many failures one account (client ID or
	// username) may have from all sources before attempts at it wait,
	// except from its familiar sources. Default 20.
	PerAccount int
	// Window is how long a key takes to forget its limit of failures: it
	// forgets one every Window/limit. Default 1h.
	Window time.Duration
	// Delay is the first lock, MaxDelay the longest (at most 24h).
	// Defaults 1s and 15m.
	Delay, MaxDelay time.Duration
	// MaxEntries bounds the memory: at most this many failure records
	// (rounded up to a multiple of 16) and as many familiar sources,
	// under 80 bytes for one of each: 8 MB at the default of 100,000.
	MaxEntries int
}

// Defaults of Throttle.
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

func (c Throttle) withDefaults() (Throttle, error) {
	if c.PerSource < 0 || c.PerPair < 0 || c.PerAccount < 0 || c.Window < 0 || c.Delay < 0 || c.MaxDelay < 0 || c.MaxEntries < 0 {
		return c, errors.New("server: Config.Throttle: negative setting")
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
		return c, errors.New("server: Config.Throttle: MaxDelay is shorter than Delay")
	case c.MaxDelay > 24*time.Hour:
		return c, errors.New("server: Config.Throttle: MaxDelay is longer than 24h")
	case max(c.PerSource, c.PerPair, c.PerAccount) > maxLimit:
		return c, errors.New("server: Config.Throttle: limit above 1,000,000")
	}
	return c, nil
}

// maxLimit bounds Throttle's limits.
const maxLimit = 1_000_000

// throttler applies Throttle. A nil *throttler lets everything through.
type throttler struct {
	seed     maphash.Seed
	fleet    *fleet // nil: this instance counts alone
	failures failureTable
	familiar familiarTable
	log      *slog.Logger
}

// newThrottler returns the throttler of c, nil if it is disabled. With
// fl, failures are also counted across the fleet.
func newThrottler(c Throttle, fl *fleet, log *slog.Logger) (*throttler, error) {
	c, err := c.withDefaults()
	if err != nil || c.Disabled {
		return nil, err
	}
	perShard := (c.MaxEntries + tableShards - 1) / tableShards
	t := &throttler{seed: maphash.MakeSeed(), fleet: fl, log: log}
	t.failures.perShard, t.familiar.perShard = perShard, perShard
	t.failures.delay, t.failures.maxDelay = int64(c.Delay), int64(c.MaxDelay)
	t.familiar.within = int64(familiarFor)
	for l, limit := range [numLayers]int{layerSource: c.PerSource, layerPair: c.PerPair, layerAccount: c.PerAccount} {
		t.failures.rules[l] = rule{limit: uint32(limit), interval: max(int64(c.Window)/int64(limit), 1)}
	}
	return t, nil
}

// result is how a checked credential turned out.
type result uint8

const (
	resultOK     result = iota
	resultFailed        // a wrong credential
	resultNone          // not checked to the end (the store failed): neither
)

// attempt is one check of a client secret or a password from a source
// for an account. The zero attempt (of a nil throttler) counts nothing.
type attempt struct {
	t        *throttler
	kind     kind
	src      netip.Addr
	account  string
	keys     [numLayers]uint64
	reserved [numLayers]bool // admitted with a reservation (passwords)
}

// begin starts an attempt at account from src. It returns how long the
// attempt must wait instead, 0 if it may go ahead; an attempt that went
// ahead ends with end.
//
// A client secret is checked in microseconds: its attempts are only
// checked against the locks (attempts racing each other before the first
// failure is counted each count too). A password takes an argon2id hash:
// its attempts reserve their place in the budgets of the account and of
// the pair (unless the source is familiar), so that guesses sent together
// at one account cannot outrun the count; correct logins of many users
// from one address are never refused for being many.
func (t *throttler) begin(k kind, src netip.Addr, account string, now time.Time) (attempt, time.Duration) {
	if t == nil {
		return attempt{}, 0
	}
	if k == kindPassword {
		account = strings.ToLower(account)
	}
	a := attempt{t: t, kind: k, src: src, account: account}
	for l := range numLayers {
		a.keys[l] = throttleKey(t.seed, k, l, src, account)
	}
	ns := now.UnixNano()
	familiar := t.familiar.seen(a.keys[layerPair], ns)
	var wait int64
	for l := range numLayers {
		var w int64
		switch {
		case l == layerAccount && familiar:
			// A familiar source does not wait for the account.
		case k == kindPassword && l == layerPair && !familiar:
			// Reserve, so that guesses sent together at one account from
			// one source cannot outrun the count. Not at the source
			// layer (many users may log in from one address at once,
			// behind a NAT or a backend), nor from a familiar source.
			w = t.failures.admit(a.keys[l], l, ns)
			a.reserved[l] = w == 0
		case k == kindPassword && l == layerAccount:
			w = t.failures.admit(a.keys[l], l, ns)
			a.reserved[l] = w == 0
		default:
			w = t.failures.lockedFor(a.keys[l], ns)
		}
		wait = max(wait, w)
	}
	if wait > 0 {
		a.end(context.Background(), resultNone, now) // give back the reservations (no store call)
		return attempt{}, time.Duration(wait)
	}
	return a, 0
}

// end records how the attempt turned out. A failure is also counted in
// the fleet (one store round trip, bounded by fleetTimeout; ctx's values
// only, not its end: a failure counts even if the client hung up).
func (a *attempt) end(ctx context.Context, r result, now time.Time) {
	if a.t == nil {
		return
	}
	ns := now.UnixNano()
	for l := range numLayers {
		switch {
		case r == resultFailed:
			var locked bool
			if a.reserved[l] {
				_, locked = a.t.failures.finish(a.keys[l], l, true, ns)
			} else {
				_, locked = a.t.failures.fail(a.keys[l], l, ns)
			}
			if locked {
				a.t.logLock(a.kind, l, a.src, a.account)
			}
		case r == resultOK && l == layerPair:
			a.t.failures.forget(a.keys[l])
			a.t.familiar.mark(a.keys[l], ns)
		case a.reserved[l]:
			a.t.failures.finish(a.keys[l], l, false, ns)
		}
	}
	if r == resultFailed && a.t.fleet != nil {
		fails := make([]fleetFailure, numLayers)
		for l := range numLayers {
			fails[l] = fleetFailure{layer: l, key: a.keys[l]}
		}
		a.t.countInFleet(ctx, a.kind, a.src, a.account, fails, now)
	}
	a.t = nil
}

// refreshFailed counts an invalid refresh token presented from
// src and, if client is not empty (it authenticated), against the client,
// here and in the fleet. It returns how long the source or the client
// was already locked here, 0 if neither was.
func (t *throttler) refreshFailed(ctx context.Context, src netip.Addr, client string, now time.Time) time.Duration {
	if t == nil {
		return 0
	}
	ns := now.UnixNano()
	// A key already locked here is not counted in the fleet: its lock
	// grows here, and a flood of junk from a locked source costs the
	// store nothing more.
	var fails []fleetFailure
	key := throttleKey(t.seed, kindRefresh, layerSource, src, "")
	before, locked := t.failures.fail(key, layerSource, ns)
	if locked {
		t.logLock(kindRefresh, layerSource, src, "")
	}
	if before == 0 {
		fails = append(fails, fleetFailure{layer: layerSource, key: key})
	}
	if client != "" {
		key := throttleKey(t.seed, kindRefresh, layerAccount, src, client)
		b, locked := t.failures.fail(key, layerAccount, ns)
		if locked {
			t.logLock(kindRefresh, layerAccount, src, client)
		}
		if b == 0 {
			fails = append(fails, fleetFailure{layer: layerAccount, key: key})
		}
		before = max(before, b)
	}
	if t.fleet != nil {
		t.countInFleet(ctx, kindRefresh, src, client, fails, now)
	}
	return time.Duration(before)
}

// logLock logs a key that has reached its limit (OWASP: log lockouts).
// Usernames are logged only for an account lock: a user who typed a
// password into the username field does not fail twenty times.
func (t *throttler) logLock(k kind, l layer, src netip.Addr, account string) {
	attrs := []any{"credential", k.String(), "key", l.String()}
	if l != layerAccount {
		attrs = append(attrs, "source", src.String())
	}
	if l != layerSource && (k != kindPassword || l == layerAccount) {
		attrs = append(attrs, "account", account)
	}
	t.log.Warn("throttle: failure limit reached; attempts wait", attrs...)
}

// errThrottledFor is the answer to an attempt that must wait d.
func errThrottledFor(d time.Duration) *Error {
	return errThrottled("too many attempts; retry later", int((d+time.Second-1)/time.Second))
}

// normalizeProxies checks the trusted proxies and puts them in the form
// sourceAddr compares with: masked, IPv4 as IPv4.
func normalizeProxies(ps []netip.Prefix) (proxySet, error) {
	out := make(proxySet, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() {
			return nil, fmt.Errorf("server: Config.TrustedProxies: invalid prefix %q", p)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
