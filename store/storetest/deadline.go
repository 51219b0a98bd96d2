package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// DeadlineSlack is how long after its deadline a call that the deadline
// ends may take to return: the backend noticing its context, and the
// scheduling of a busy test machine. RunDeadline fails a call that
// answers later.
const DeadlineSlack = 500 * time.Millisecond

// RunDeadline runs an outage of the link between s and its server,
// against s, an empty store that store.WithTimeout bounds to d and whose
// every connection goes through p. With stall the proxy holds bytes
// (p.Stall: a partition, which the store notices only by its deadline);
// without, it resets connections (p.Cut).
//
// While the link fails, every call fails with store.ErrUnavailable within
// d + DeadlineSlack: one alone, on a connection of the pool; then many at
// once, more than the pool holds, so
// that some open new connections (through a stall, new connections are
// accepted and held too). The
// calls are reads, writes, a rotation and each of the optional
// interfaces s has (store.Capability). After p.Restore, s serves again within seconds and
// the family rotates on.
func RunDeadline(t *testing.T, s store.Store, p *Proxy, d time.Duration, stall bool) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, store.Client{ID: "c", CreatedAt: t0}))
	_, tk := newFamily(t, s, "f", "c", "alice")
	calls := deadlineCalls(s, tk)

	// Fill the pool: as many connections as calls at once.
	var wg sync.WaitGroup
	for range len(calls) {
		wg.Go(func() { _ = s.Ping(ctx) })
	}
	wg.Wait()
	pooled := p.Open()
	if pooled == 0 {
		t.Fatal("the store holds no connection through the proxy")
	}

	if stall {
		p.Stall()
	} else {
		p.Cut()
	}
	limit := d + DeadlineSlack
	check := func(name string, call func(context.Context) error) {
		start := time.Now()
		err := call(ctx)
		took := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) || took > limit {
			t.Errorf("%s: %v after %v; want store.ErrUnavailable within %v (the deadline %v + %v)", name, err, took, limit, d, DeadlineSlack)
		}
	}

	// One call alone, on a connection of the pool.
	accepted := p.Accepted()
	check("GetClient alone", calls[0].call)

	// Every call, each several times at once: more calls than the pool
	// had connections, so that some need new ones.
	n := max(2, (pooled+2+len(calls)-1)/len(calls))
	for i := range n {
		for _, c := range calls {
			wg.Go(func() { check(fmt.Sprintf("%s (%d of %d at once)", c.name, i+1, n*len(calls)), c.call) })
		}
	}
	wg.Wait()
	opened := p.Accepted() - accepted
	t.Logf("%d connections in the pool, %d opened during the outage", pooled, opened)
	if total := int64(1 + n*len(calls)); opened == 0 || stall && opened >= total {
		// Through a stall, a connection the pool tried once is never
		// given back: each call beyond the opened ones took a pooled one.
		t.Errorf("%d calls opened %d connections; want some calls on new connections and, through a stall, some on the pool's %d", total, opened, pooled)
	}

	// After the restore, the same handle serves again and the family
	// rotates on: from its first token, or, if a rotation sent during the
	// outage went through late, from the successor the calls asked for.
	p.Restore()
	waitPing(t, s, 10*time.Second)
	fam, err := s.GetFamily(ctx, "f")
	must(t, err)
	cur := tk
	if fam.Generation == 1 {
		cur = tk.succ(fam.TokenHash)
	}
	res, err := s.Rotate(ctx, req(cur, hash(), t0))
	if err != nil || res.Outcome != store.Rotated {
		t.Fatalf("rotation after the restore: %v %v; want rotated", res.Outcome, err)
	}
}

type deadlineCall struct {
	name string
	call func(ctx context.Context) error
}

// deadlineCalls are the calls RunDeadline makes while the link fails.
func deadlineCalls(s store.Store, tk token) []deadlineCall {
	next := hash() // every rotation asks for the same successor: one may go through late
	cs := []deadlineCall{
		{"GetClient", func(ctx context.Context) error { _, err := s.GetClient(ctx, "c"); return err }},
		{"ListClients", func(ctx context.Context) error { _, err := s.ListClients(ctx); return err }},
		{"GetFamily", func(ctx context.Context) error { _, err := s.GetFamily(ctx, "f"); return err }},
		{"Rotate", func(ctx context.Context) error { _, err := s.Rotate(ctx, req(tk, next, t0)); return err }},
		{"CreateFamily", func(ctx context.Context) error {
			return s.CreateFamily(ctx, store.Family{ID: "late-" + fmt.Sprintf("%x", hash()[:8]), ClientID: "c", Subject: "bob",
				CreatedAt: t0, LastUsedAt: t0, IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour), TokenHash: hash()})
		}},
		{"AccessTokenRevoked", func(ctx context.Context) error { _, err := s.AccessTokenRevoked(ctx, "jti"); return err }},
		{"ListKeys", func(ctx context.Context) error { _, err := s.ListKeys(ctx); return err }},
		{"Ping", s.Ping},
	}
	if fc, ok := store.Capability[store.FailureCounter](s); ok {
		cs = append(cs, deadlineCall{"CountFailures", func(ctx context.Context) error {
			_, err := fc.CountFailures(ctx, []store.Failure{{Key: "deadline", Forget: time.Minute}})
			return err
		}})
	}
	if le, ok := store.Capability[store.Leaser](s); ok {
		cs = append(cs, deadlineCall{"Lease", func(ctx context.Context) error {
			_, err := le.Lease(ctx, "deadline", "me", time.Minute)
			return err
		}})
	}
	if lt, ok := store.Capability[store.LegacyTokens](s); ok {
		cs = append(cs, deadlineCall{"LegacyToken", func(ctx context.Context) error {
			_, _, err := lt.LegacyToken(ctx, hash())
			if errors.Is(err, store.ErrNotFound) {
				return errors.New("answered store.ErrNotFound while the link failed")
			}
			return err
		}})
	}
	return cs
}
