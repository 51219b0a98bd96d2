package keys_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// gatedStore is a memory store whose ListKeys reads the keys, then waits
// for a value on gate (or its context) before it answers: a read that
// began before a change and ends after it.
type gatedStore struct {
	*memory.Store
	gate  chan struct{}
	lists atomic.Int32
}

func (g *gatedStore) ListKeys(ctx context.Context) ([]store.Key, error) {
	ks, err := g.Store.ListKeys(ctx)
	g.lists.Add(1)
	select {
	case <-g.gate:
		return ks, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Reloads share reads, and a Reload sees every change made before it was
// called: callers that arrive while a read that began before them is in
// flight wait for the next read, which they share.
func TestReloadSharesReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		mem := memory.New()
		g := &gatedStore{Store: mem, gate: make(chan struct{})}
		s, err := loadGated(t, g)
		if err != nil {
			t.Fatal(err)
		}
		old := s.ActiveKeyID()

		var wg sync.WaitGroup
		reload := func(errs *[3]error, i int) {
			wg.Go(func() { errs[i] = s.Reload(ctx, t0) })
		}
		var errs [3]error
		reload(&errs, 0) // its read takes the keys before the revocation
		synctest.Wait()
		next, err := keys.Revoke(ctx, mem, old, "", t0)
		if err != nil {
			t.Fatal(err)
		}
		reload(&errs, 1)
		reload(&errs, 2)
		synctest.Wait()
		if n := g.lists.Load(); n != 2 { // Load's, and the one in flight
			t.Fatalf("%d reads; want the one in flight only", n)
		}
		g.gate <- struct{}{}
		synctest.Wait()
		if n := g.lists.Load(); n != 3 || !s.Published(old) {
			t.Fatalf("after the first read: %d reads, old key published %v; want a second read in flight, the first read's keys", n, s.Published(old))
		}
		g.gate <- struct{}{}
		wg.Wait()
		if n := g.lists.Load(); n != 3 || errs != [3]error{} {
			t.Fatalf("%d reads, errors %v; want 3 (one shared by the two late callers), none", n, errs)
		}
		if s.Published(old) || s.ActiveKeyID() != next.ID {
			t.Fatalf("after the shared read: old published %v, signing %s; want the revoked key gone, %s signing", s.Published(old), s.ActiveKeyID(), next.ID)
		}
	})
}

// loadGated loads a Set on g, letting Load's own read through.
func loadGated(t *testing.T, g *gatedStore) (*keys.Set, error) {
	t.Helper()
	go func() { g.gate <- struct{}{} }()
	return keys.Load(t.Context(), g, "", time.Hour, t0)
}

// A read cut short because its caller went away answers no one else: a
// caller that waited for it starts its own.
func TestReloadCallerGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gatedStore{Store: memory.New(), gate: make(chan struct{})}
		s, err := loadGated(t, g)
		if err != nil {
			t.Fatal(err)
		}
		gone, cancel := context.WithCancel(t.Context())
		var errGone, errWaiter error
		var wg sync.WaitGroup
		wg.Go(func() { errGone = s.Reload(gone, t0) })
		synctest.Wait()
		wg.Go(func() { errWaiter = s.Reload(t.Context(), t0) })
		synctest.Wait()
		cancel()
		synctest.Wait()
		if n := g.lists.Load(); n != 3 {
			t.Fatalf("%d reads; want the waiter's own after the cut one", n)
		}
		g.gate <- struct{}{}
		wg.Wait()
		if !errors.Is(errGone, context.Canceled) || errWaiter != nil {
			t.Fatalf("caller gone: %v; waiter: %v; want context.Canceled, nil", errGone, errWaiter)
		}
	})
}

// A Reload that finds the keys unchanged keeps the signer and the JWKS
// (the same bytes), and one that finds only a key's times changed keeps
// them too while Check answers from the new times.
func TestReloadUnchangedKeepsTheSet(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	kid := s.ActiveKeyID()
	before := &s.JWKS()[0]
	if err := s.Reload(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if &s.JWKS()[0] != before {
		t.Fatal("a Reload that found nothing new rebuilt the JWKS")
	}
	// Retired ahead (as Rotate does to the old key): it signs and is
	// published until then, and for publishFor after.
	if err := st.RetireKey(ctx, kid, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx, kid, t0.Add(time.Minute)); err != nil || &s.JWKS()[0] != before {
		t.Fatalf("Check after a retirement ahead: %v; JWKS rebuilt %v", err, &s.JWKS()[0] != before)
	}
	if err := s.Check(ctx, kid, t0.Add(2*time.Minute+time.Hour)); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("Check past the retirement and publishFor: %v; want ErrUnknownKey", err)
	}
}

// BenchmarkReloadAndSign is what the server pays per signature to see
// every revocation: a Reload that finds nothing changed (one ListKeys of
// the memory store), beside the signature alone (the anchor) and the two
// together; parallel shares reads among the goroutines.
func BenchmarkReloadAndSign(b *testing.B) {
	ctx := b.Context()
	s, err := keys.Load(ctx, memory.New(), keys.EdDSA, time.Hour, t0)
	if err != nil {
		b.Fatal(err)
	}
	claims := map[string]any{"iss": "https://issuer.example", "sub": "alice", "aud": "api", "exp": 1893456000, "iat": 1893455100,
		"jti": "Hd2m7Jbq3xZkzQ7c1Cq2Ag", "client_id": "app", "scope": "read write"}
	sign := func(b *testing.B) {
		if _, err := s.Sign(claims); err != nil {
			b.Fatal(err)
		}
	}
	reload := func(b *testing.B) {
		if err := s.Reload(ctx, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sign(b)
		}
	})
	b.Run("Reload", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reload(b)
		}
	})
	b.Run("Reload+Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reload(b)
			sign(b)
		}
	})
	b.Run("Reload/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				reload(b)
			}
		})
	})
}
