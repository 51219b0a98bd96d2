package verify

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// keySet is one fetch of the issuer's keys, with the times that govern
// its use (see the package doc, "Key lifetime"). It is never modified once
// published in Verifier.keys: a failed refresh publishes a changed copy.
type keySet struct {
	keys map[string]*publicKey // by kid
	// due is when Verify stops taking the set as it is: the refresh point
	// (80% of the lifetime) of a set that is fresh, the next attempt of one
	// whose refresh failed. Before due, the hot path is a map lookup.
	due        time.Time
	expires    time.Time // the end of the lifetime
	staleUntil time.Time // expires + StaleIfError: never used after it
	// failed is set once a fetch that ended at or after due failed: the
	// set is kept until staleUntil (stale-if-error), and the fetch is
	// tried again at most once per MinRefresh, in the background.
	failed bool
}

// fetchCall is one fetch of the keys; the callers that wait for it read
// its result once done is closed.
type fetchCall struct {
	done chan struct{}
	keys *keySet // nil if err is not
	err  error
}

// key returns the public key kid names, and the time to check the claims
// at. The hot path is one clock reading, one atomic load, one time
// comparison and a map lookup; anything else goes to refresh.
func (v *Verifier) key(ctx context.Context, kid string) (*publicKey, time.Time, error) {
	now := v.o.Now()
	if ks := v.keys.Load(); ks != nil && now.Before(ks.due) {
		if k := ks.keys[kid]; k != nil {
			return k, now, nil
		}
	}
	k, err := v.refresh(ctx, kid, now)
	return k, v.o.Now(), err
}

// refresh answers for kid when the hot path cannot: the kid is unknown,
// or the set is due, lapsed, stale or missing. It holds v.mu only to
// decide. A fetch runs on its own goroutine (see start) and is shared by
// every caller that needs one meanwhile; a caller that waits for it stops
// waiting when ctx ends, without failing the others.
func (v *Verifier) refresh(ctx context.Context, kid string, now time.Time) (*publicKey, error) {
	v.mu.Lock()
	ks := v.keys.Load()
	var k *publicKey
	if ks != nil {
		k = ks.keys[kid]
	}
	var c *fetchCall
	var err error
	switch {
	case ks != nil && now.Before(ks.due):
		// Usable as it is (perhaps refreshed while we took the lock).
		if k != nil {
			v.mu.Unlock()
			return k, nil
		}
		c, err = v.startLimited(ctx, now) // an unknown kid
	case ks != nil && !ks.failed && now.Before(ks.expires):
		// Due: refresh in the background and answer from the set
		// meanwhile. The refresh is not subject to MinRefresh: it happens
		// once per set, which lives at least MinRefresh.
		c = v.start(ctx, now)
		if k != nil {
			v.mu.Unlock()
			return k, nil
		}
		// An unknown kid waits for that fetch.
	case ks != nil && !ks.failed:
		// Lapsed, and no fetch since the refresh point has failed: wait for
		// one, as on first use.
		c = v.start(ctx, now)
	case ks != nil && now.Before(ks.staleUntil):
		// Stale: fetching failed. Try again at most once per MinRefresh,
		// and answer from the set meanwhile.
		c = v.inflight
		if c == nil && !now.Before(v.lastFetch.Add(v.o.MinRefresh)) {
			c = v.start(ctx, now)
		}
		if k != nil {
			v.mu.Unlock()
			return k, nil
		}
		if c == nil {
			err = keysError(v.lastErr)
		}
	default:
		// No keys yet, or none that may still be used.
		c, err = v.startLimited(ctx, now)
	}
	v.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return v.wait(ctx, c, kid)
}

// startLimited returns the fetch under way, or starts one unless the last
// one started less than MinRefresh before now; then it returns the error
// that the last fetch answers: ErrKeys if it failed, ErrUnknownKey if not.
// v.mu is held.
func (v *Verifier) startLimited(ctx context.Context, now time.Time) (*fetchCall, error) {
	if v.inflight != nil {
		return v.inflight, nil
	}
	if !v.lastFetch.IsZero() && now.Before(v.lastFetch.Add(v.o.MinRefresh)) {
		if v.lastErr != nil {
			return nil, keysError(v.lastErr)
		}
		return nil, fmt.Errorf("%w (keys fetched less than %s ago)", ErrUnknownKey, v.o.MinRefresh)
	}
	return v.start(ctx, now), nil
}

// start returns the fetch under way, or starts one at now. v.mu is held.
func (v *Verifier) start(ctx context.Context, now time.Time) *fetchCall {
	if v.inflight != nil {
		return v.inflight
	}
	v.lastFetch = now
	c := &fetchCall{done: make(chan struct{})}
	v.inflight = c
	go v.fetch(context.WithoutCancel(ctx), c, v.jwksURL, now)
	return c
}

// wait waits for c, then looks kid up in what it fetched. If it failed,
// the set in use answers for kid while it is within its stale period.
func (v *Verifier) wait(ctx context.Context, c *fetchCall, kid string) (*publicKey, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for the fetch: %w", ErrKeys, context.Cause(ctx))
	}
	if c.err == nil {
		if k := c.keys.keys[kid]; k != nil {
			return k, nil
		}
		return nil, ErrUnknownKey
	}
	if ks := v.keys.Load(); ks != nil && v.o.Now().Before(ks.staleUntil) {
		if k := ks.keys[kid]; k != nil {
			return k, nil
		}
	}
	return nil, keysError(c.err)
}

// keysError wraps err, the error of the last fetch, in ErrKeys.
func keysError(err error) error {
	if err == nil {
		return ErrKeys
	}
	return fmt.Errorf("%w: %w", ErrKeys, err)
}

// fetch runs one fetch for c, started at started, with jwksURL if it is
// known, and publishes the result. A new set lives for the lifetime its
// response gives (see lifetime), counted from started. On failure the set
// in use stays, and if it was due it turns stale (see keySet.failed).
func (v *Verifier) fetch(ctx context.Context, c *fetchCall, jwksURL string, started time.Time) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	var err error
	if jwksURL == "" {
		jwksURL, err = v.discover(ctx)
	}
	var keys map[string]*publicKey
	var h http.Header
	if err == nil {
		keys, h, err = v.fetchJWKS(ctx, jwksURL)
	}

	var ks *keySet
	var life time.Duration
	v.mu.Lock()
	old := v.keys.Load()
	if err == nil {
		life = lifetime(h, v.o.MinRefresh, v.o.MaxKeysAge)
		expires := started.Add(life)
		ks = &keySet{keys: keys, due: started.Add(life - life/5), expires: expires, staleUntil: expires.Add(v.o.StaleIfError)}
		v.jwksURL = jwksURL
		v.keys.Store(ks)
	} else if now := v.o.Now(); old != nil && !now.Before(old.due) {
		stale := *old
		stale.failed = true
		stale.due = now.Add(v.o.MinRefresh)
		if stale.due.After(old.staleUntil) {
			stale.due = old.staleUntil
		}
		v.keys.Store(&stale)
	}
	v.lastErr = err
	v.inflight = nil
	v.mu.Unlock()
	c.keys, c.err = ks, err
	close(c.done)

	switch {
	case err == nil:
		v.o.Logger.DebugContext(ctx, "verify: fetched the issuer's keys", "issuer", v.issuer, "jwks_uri", jwksURL,
			"keys", len(keys), "lifetime", life)
	case old != nil:
		v.o.Logger.WarnContext(ctx, "verify: cannot fetch the issuer's keys", "issuer", v.issuer, "err", err,
			"stale_until", old.staleUntil)
	default:
		v.o.Logger.WarnContext(ctx, "verify: cannot fetch the issuer's keys", "issuer", v.issuer, "err", err)
	}
}
