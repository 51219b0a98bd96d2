package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// outageDeadline bounds each call made while the database is cut: a store
// must answer store.ErrUnavailable before it, not hang until a client
// timeout.
const outageDeadline = 3 * time.Second

// RunOutage runs an outage against s, an empty store whose every
// connection to its server goes through p: families rotating when p is
// cut fail with store.ErrUnavailable, calls made while it is cut fail
// with it before outageDeadline, and after p.Restore the same s serves
// again within seconds, with every family at the generation it had or
// exactly one further (its successor the one the failed call asked for),
// and every family still rotates.
func RunOutage(t *testing.T, s store.Store, p *Proxy) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, store.Client{ID: "c", CreatedAt: t0}))
	chains := newOutageChains(t, s, 4)
	cutDuringStorm(t, s, p, chains)
	checkCallsFailFastWhenCut(t, s, chains)

	// After the restore, the same handle serves again within seconds.
	p.Restore()
	st := time.Now()
	waitPing(t, s, 10*time.Second)
	t.Logf("recovered in %v", time.Since(st))

	checkNothingHalfWritten(t, s, chains)
	checkChainsStillRotate(t, s, chains)
}

// outageChain is one family rotated through an outage, with what its
// rotator last knew of it.
type outageChain struct {
	id       string
	cur      token  // the last token known to be current
	pending  []byte // the successor of cur a failed Rotate asked for
	rotated  int
	lastErr  error
	lastLeft time.Duration // time left before the deadline when the failed Rotate returned
}

// newOutageChains creates n families of client "c" in s, named f0, f1, ….
func newOutageChains(t *testing.T, s store.Store, n int) []*outageChain {
	t.Helper()
	chains := make([]*outageChain, n)
	for i := range chains {
		id := fmt.Sprintf("f%d", i)
		_, h := newFamily(t, s, id, "c", "alice")
		chains[i] = &outageChain{id: id, cur: h}
	}
	return chains
}

// cutDuringStorm rotates every chain until a rotation fails, cuts p once
// each has rotated at least once, and checks that each failed with
// store.ErrUnavailable before outageDeadline.
func cutDuringStorm(t *testing.T, s store.Store, p *Proxy, chains []*outageChain) {
	t.Helper()
	n := len(chains)
	first := make(chan struct{}, n)
	done := make(chan struct{}, n)
	for _, c := range chains {
		go func() {
			defer func() { done <- struct{}{} }()
			c.rotateUntilFailure(t.Context(), s, first)
		}()
	}
	for range n {
		select {
		case <-first:
		case <-done:
			t.Fatal("a family failed to rotate before the outage")
		}
	}
	p.Cut()
	cs := time.Now()
	for range n {
		<-done
	}
	t.Logf("storm ended in %v", time.Since(cs))
	for _, c := range chains {
		if !errors.Is(c.lastErr, store.ErrUnavailable) || c.lastLeft <= 0 {
			t.Errorf("family %s: Rotate when cut: %v with %v left of %v; want store.ErrUnavailable before the deadline", c.id, c.lastErr, c.lastLeft, outageDeadline)
		}
	}
}

// rotateUntilFailure rotates c in s until a rotation fails, recording the
// failure and the successor it asked for, and sends on first after its
// first rotation.
func (c *outageChain) rotateUntilFailure(ctx context.Context, s store.Store, first chan<- struct{}) {
	for {
		next := hash()
		rctx, cancel := context.WithTimeout(ctx, outageDeadline)
		_, err := s.Rotate(rctx, req(c.cur, next, t0))
		left := time.Until(deadline(rctx))
		cancel()
		if err != nil {
			c.pending, c.lastErr, c.lastLeft = next, err, left
			return
		}
		c.cur = c.cur.succ(next)
		if c.rotated++; c.rotated == 1 {
			first <- struct{}{}
		}
	}
}

// checkCallsFailFastWhenCut checks that, while the proxy is cut, every
// call fails as unavailable before outageDeadline.
func checkCallsFailFastWhenCut(t *testing.T, s store.Store, chains []*outageChain) {
	t.Helper()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Rotate", func(ctx context.Context) error {
			c := chains[0]
			_, err := s.Rotate(ctx, req(c.cur, hash(), t0))
			return err
		}},
		{"CreateFamily", func(ctx context.Context) error {
			f := store.Family{ID: "cut", ClientID: "c", Subject: "alice", CreatedAt: t0, LastUsedAt: t0, IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour), TokenHash: hash()}
			return s.CreateFamily(ctx, f)
		}},
		{"GetClient", func(ctx context.Context) error { _, err := s.GetClient(ctx, "c"); return err }},
		{"Ping", s.Ping},
	}
	for _, c := range calls {
		cctx, cancel := context.WithTimeout(t.Context(), outageDeadline)
		err := c.call(cctx)
		left := time.Until(deadline(cctx))
		cancel()
		t.Logf("%s when cut: %v left", c.name, left)
		if !errors.Is(err, store.ErrUnavailable) || left <= 0 {
			t.Errorf("%s when cut: %v with %v left of %v; want store.ErrUnavailable before the deadline", c.name, err, left, outageDeadline)
		}
	}
}

// checkNothingHalfWritten checks that the calls made while cut wrote
// nothing, and that each family is where it was when cut or exactly one
// step further.
func checkNothingHalfWritten(t *testing.T, s store.Store, chains []*outageChain) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.GetFamily(ctx, "cut"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the family created while cut: %v; want store.ErrNotFound", err)
	}
	for _, c := range chains {
		fam, err := s.GetFamily(ctx, c.id)
		must(t, err)
		switch {
		case !fam.RevokedAt.IsZero():
			t.Fatalf("family %s revoked by the outage: %+v", c.id, fam)
		case fam.Generation == int64(c.rotated) && bytes.Equal(fam.TokenHash, c.cur.hash):
		// The rotation that failed may have committed before the cut.
		case fam.Generation == int64(c.rotated+1) && bytes.Equal(fam.TokenHash, c.pending) && bytes.Equal(fam.PreviousHash, c.cur.hash):
		default:
			t.Fatalf("family %s after %d rotations: generation %d, current %x; want generation %d with %x, or %d with the pending successor %x",
				c.id, c.rotated, fam.Generation, fam.TokenHash, c.rotated, c.cur.hash, c.rotated+1, c.pending)
		}
	}
}

// checkChainsStillRotate checks that every family still rotates: the
// client's retry of the failed call (Rotated, or Repeated if it had
// committed), then one more.
func checkChainsStillRotate(t *testing.T, s store.Store, chains []*outageChain) {
	t.Helper()
	ctx := t.Context()
	for _, c := range chains {
		res, err := s.Rotate(ctx, req(c.cur, c.pending, t0))
		if err != nil || (res.Outcome != store.Rotated && res.Outcome != store.Repeated) {
			t.Fatalf("family %s: retry after the outage: %v %v", c.id, res.Outcome, err)
		}
		res, err = s.Rotate(ctx, req(c.cur.succ(c.pending), hash(), t0))
		if err != nil || res.Outcome != store.Rotated || res.Family.Generation != int64(c.rotated+2) {
			t.Fatalf("family %s: rotation after the outage: %v generation %d %v; want rotated to generation %d", c.id, res.Outcome, res.Family.Generation, err, c.rotated+2)
		}
	}
}

// waitPing polls s.Ping until it succeeds, failing t if it has not within
// limit.
func waitPing(t *testing.T, s store.Store, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.Ping(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the store did not recover within %v of the restore: %v", limit, err)
		case <-tick.C:
		}
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
