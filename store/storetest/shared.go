package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// RunShared runs the shared mode of the suite: newPair returns two handles
// on one new, empty database, as two server processes would each have
// (two connection pools, two file handles); RunShared closes both. Every
// case writes through one handle and checks what the other sees, or races
// the two against each other.
//
// The memory backend has no second handle and is exempt.
func RunShared(t *testing.T, newPair func(t *testing.T) (a, b store.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"ConcurrentSameSuccessor", testSharedSame},
		{"ConcurrentDifferentSuccessors", testSharedDifferent},
		{"ConcurrentSecret", testSharedSecret},
		{"RevokeSeenAtOnce", testSharedRevoke},
		{"DeleteClientRevokesOtherHandlesFamily", testSharedDeleteClient},
		{"ConcurrentFirstKey", testSharedFirstKey},
		{"ConcurrentRotateKey", testSharedRotateKey},
		{"ConcurrentRedeem", testSharedRedeem},
		{"RedeemRacesDeleteUser", testSharedRedeemDelete},
		{"ConcurrentKeyUses", testSharedKeyUses},
		{"ConcurrentUpdateClient", testConcurrentUpdateOne},
		{"ConcurrentUpdatesKeepAll", testConcurrentUpdatesKeepAll},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t)
			t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
			tc.fn(t, a, b)
		})
	}
}

// sharedRotations is how many goroutines rotate through each handle.
const sharedRotations = 20

// rotateBoth starts sharedRotations Rotates of old through each handle at
// once, the i-th to next(i), and counts their outcomes; an ErrRevoked
// counts as outcome 0, any other error fails the test.
func rotateBoth(t *testing.T, a, b store.Store, old token, next func(i int) []byte) map[store.Outcome]int {
	t.Helper()
	return runConcurrently(t, 2*sharedRotations, func(i int) (store.RotateResult, error) {
		s := a
		if i%2 == 1 {
			s = b
		}
		return rotate(t, s, old, next(i), t0.Add(time.Second))
	})
}

// 20 goroutines on each handle rotate one token to one successor: exactly
// one Rotated, the 39 others Repeated with that successor, and both
// handles then read the successor as the current token at generation 1.
func testSharedSame(t *testing.T, a, b store.Store) {
	_, tk0 := newFamily(t, a, "f", "c", "alice")
	h1 := hash()
	counts := rotateBoth(t, a, b, tk0, func(int) []byte { return h1 })
	if counts[store.Rotated] != 1 || counts[store.Repeated] != 2*sharedRotations-1 || len(counts) != 2 {
		t.Fatalf("outcomes %v; want 1 rotated, %d repeated", counts, 2*sharedRotations-1)
	}
	for _, s := range []store.Store{a, b} {
		if f := wantFamily(t, s, "f", 1, h1, tk0.hash); !f.RevokedAt.IsZero() || f.RotatedAt.IsZero() {
			t.Fatalf("family %+v; want active, rotated once", f)
		}
	}
}

// 20 goroutines on each handle rotate one token, each to a successor of
// its own: exactly one Rotated, the 39 others ReuseDetected or, once the
// family is revoked, ErrRevoked; both handles see the family revoked for
// reuse at generation 1, and the winner's successor refused.
func testSharedDifferent(t *testing.T, a, b store.Store) {
	_, tk0 := newFamily(t, a, "f", "c", "alice")
	next := make([][]byte, 2*sharedRotations)
	for i := range next {
		next[i] = hash()
	}
	counts := rotateBoth(t, a, b, tk0, func(i int) []byte { return next[i] })
	if counts[store.Rotated] != 1 || counts[store.ReuseDetected] == 0 ||
		counts[store.ReuseDetected]+counts[0] != 2*sharedRotations-1 {
		t.Fatalf("outcomes %v; want 1 rotated, the %d others reuse (at least one) or revoked", counts, 2*sharedRotations-1)
	}
	for i, s := range []store.Store{a, b} {
		f, err := s.GetFamily(t.Context(), "f")
		must(t, err)
		if f.RevokedAt.IsZero() || f.RevokeReason != store.ReasonReuse || f.Generation != 1 {
			t.Fatalf("handle %d: family %+v; want revoked for reuse at generation 1", i, f)
		}
		_, err = rotate(t, s, tk0.succ(f.TokenHash), hash(), t0.Add(2*time.Second))
		wantErr(t, err, store.ErrRevoked)
	}
}

// 20 goroutines on each handle get-or-create one secret, each with a value
// of its own: every caller gets the same value, one of those offered, and
// both handles return it afterwards whatever value they offer.
func testSharedSecret(t *testing.T, a, b store.Store) {
	const n = 2 * sharedRotations
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.Secret(t.Context(), "cookie", fmt.Appendf(nil, "value-%d", i))
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		must(t, errs[i])
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("Secret returned %q to caller 0 and %q to caller %d", got[0], got[i], i)
		}
	}
	var offered bool
	for i := range n {
		offered = offered || bytes.Equal(got[0], fmt.Appendf(nil, "value-%d", i))
	}
	if !offered {
		t.Fatalf("Secret returned %q, a value no caller offered", got[0])
	}
	for i, s := range []store.Store{a, b} {
		v, err := s.Secret(t.Context(), "cookie", []byte("later"))
		must(t, err)
		if !bytes.Equal(v, got[0]) {
			t.Fatalf("handle %d: Secret = %q afterwards, want %q", i, v, got[0])
		}
	}
}

// A family revoked through one handle is revoked for the other at once:
// its current token, just rotated through the other handle, is refused
// with ErrRevoked and the revocation's time and reason, in either
// direction.
func testSharedRevoke(t *testing.T, a, b store.Store) {
	for i, p := range [][2]store.Store{{a, b}, {b, a}} {
		use, revoke := p[0], p[1]
		id := fmt.Sprint("f", i)
		_, tk0 := newFamily(t, use, id, "c", "alice")
		tk1 := tk0.succ(hash())
		res, err := rotate(t, use, tk0, tk1.hash, t0.Add(time.Second))
		must(t, err)
		if res.Outcome != store.Rotated {
			t.Fatalf("rotation of %s: %v, want rotated", id, res.Outcome)
		}
		at := t0.Add(time.Minute)
		must(t, revoke.RevokeFamily(t.Context(), id, at, "logout"))
		res, err = rotate(t, use, tk1, hash(), t0.Add(2*time.Minute))
		if !errors.Is(err, store.ErrRevoked) || res.Family.ID != id || !res.Family.RevokedAt.Equal(at) || res.Family.RevokeReason != "logout" {
			t.Fatalf("rotation of %s after RevokeFamily through the other handle: %v %+v; want ErrRevoked, revoked at %v for logout", id, err, res.Family, at)
		}
		wantRevoked(t, use, id, at, "logout")
	}
}

// Deleting a client through one handle revokes, with ReasonClientDeleted,
// the family created and rotated through the other: the other handle
// refuses its token and no longer finds the client.
func testSharedDeleteClient(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	must(t, a.CreateClient(ctx, store.Client{ID: "app", CreatedAt: t0}))
	_, tk0 := newFamily(t, a, "f", "app", "alice")
	tk1 := tk0.succ(hash())
	_, err := rotate(t, a, tk0, tk1.hash, t0.Add(time.Second))
	must(t, err)
	at := t0.Add(time.Minute)
	n, err := b.DeleteClient(ctx, "app", at)
	must(t, err)
	if n != 1 {
		t.Fatalf("DeleteClient through the second handle revoked %d families, want 1", n)
	}
	_, err = a.GetClient(ctx, "app")
	wantErr(t, err, store.ErrNotFound)
	res, err := rotate(t, a, tk1, hash(), t0.Add(2*time.Minute))
	if !errors.Is(err, store.ErrRevoked) || res.Family.RevokeReason != store.ReasonClientDeleted || !res.Family.RevokedAt.Equal(at) {
		t.Fatalf("rotation after DeleteClient through the other handle: %v %+v; want ErrRevoked, client_deleted at %v", err, res.Family, at)
	}
	wantRevoked(t, a, "f", at, store.ReasonClientDeleted)
}
