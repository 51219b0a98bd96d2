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

// raceFirstKey starts n CreateKeyIfNones on an empty store at once, the
// i-th through handles[i%len(handles)] with a key of its own, and checks
// that exactly one key was stored, that every caller got that key back,
// and that every handle lists only it. It returns that key.
func raceFirstKey(t *testing.T, handles []store.Store, n int) store.Key {
	t.Helper()
	got := make([]store.Key, n)
	errs := make([]error, n)
	offered := make([]store.Key, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		s := handles[i%len(handles)]
		offered[i] = store.Key{ID: fmt.Sprint("k", i), Algorithm: "EdDSA", Private: fmt.Appendf(nil, "private-%d", i),
			CreatedAt: t0, NotBefore: t0.Add(time.Duration(i) * time.Second)}
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.CreateKeyIfNone(t.Context(), offered[i])
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		must(t, errs[i])
	}
	var winner store.Key
	for _, o := range offered {
		if o.ID == got[0].ID {
			winner = o
		}
	}
	if winner.ID == "" {
		t.Fatalf("CreateKeyIfNone returned %q, a key no caller offered", got[0].ID)
	}
	for i := range n {
		if !sameKey(got[i], winner) {
			t.Fatalf("caller %d got key %+v, caller 0 got %+v", i, got[i], winner)
		}
	}
	for i, s := range handles {
		ks, err := s.ListKeys(t.Context())
		must(t, err)
		if len(ks) != 1 || !sameKey(ks[0], winner) {
			t.Fatalf("handle %d lists %d keys %+v after %d concurrent first-key creations; want only %+v", i, len(ks), ks, n, winner)
		}
	}
	return winner
}

func sameKey(a, b store.Key) bool {
	return a.ID == b.ID && a.Algorithm == b.Algorithm && bytes.Equal(a.Private, b.Private) && a.Use == b.Use &&
		a.CreatedAt.Equal(b.CreatedAt) && a.NotBefore.Equal(b.NotBefore) &&
		a.RetiredAt.Equal(b.RetiredAt) && a.RevokedAt.Equal(b.RevokedAt)
}

// CreateKeyIfNone: of 20 concurrent first-key creations exactly one
// stores its key (NotBefore and all), and all get it; later calls get the
// newest active key and store nothing; a key retired ahead of time or
// revoked is not active, so then the offered key is stored; a taken kid
// with no active key is ErrExists.
func testCreateKeyIfNone(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := raceFirstKey(t, []store.Store{s}, sharedRotations)

	later := store.Key{ID: "later", Algorithm: "EdDSA", Private: []byte("later"), CreatedAt: t0.Add(time.Minute)}
	got, err := s.CreateKeyIfNone(ctx, later)
	must(t, err)
	if !sameKey(got, first) {
		t.Fatalf("CreateKeyIfNone with an active key = %+v, want the active %+v", got, first)
	}
	newer := store.Key{ID: "newer", Algorithm: "ES256", Private: []byte("newer"), CreatedAt: t0.Add(2 * time.Minute)}
	must(t, s.CreateKey(ctx, newer))
	if got, err = s.CreateKeyIfNone(ctx, later); err != nil || !sameKey(got, newer) {
		t.Fatalf("CreateKeyIfNone with two active keys = %+v, %v; want the newest, %+v", got, err, newer)
	}

	// Retired ahead of time (as Rotate does with a lead) is retired.
	must(t, s.RetireKey(ctx, first.ID, t0.Add(time.Hour)))
	must(t, s.RevokeKey(ctx, "newer", t0.Add(3*time.Minute)))
	if got, err = s.CreateKeyIfNone(ctx, later); err != nil || !sameKey(got, later) {
		t.Fatalf("CreateKeyIfNone with every key retired or revoked = %+v, %v; want the offered %+v", got, err, later)
	}
	ks, err := s.ListKeys(ctx)
	must(t, err)
	if len(ks) != 3 || ks[2].ID != "later" {
		t.Fatalf("ListKeys = %+v; want the first, newer and later", ks)
	}

	must(t, s.RetireKey(ctx, "later", t0.Add(4*time.Minute)))
	_, err = s.CreateKeyIfNone(ctx, store.Key{ID: "newer", Algorithm: "EdDSA", Private: []byte("x")})
	wantErr(t, err, store.ErrExists)
	if ks, err = s.ListKeys(ctx); err != nil || len(ks) != 3 {
		t.Fatalf("ListKeys after a refused CreateKeyIfNone = %d keys, %v; want 3", len(ks), err)
	}
}

// 20 goroutines on each handle create the first key of an empty store at
// once, each its own: exactly one key is stored, every caller gets it, and
// both handles list only it.
func testSharedFirstKey(t *testing.T, a, b store.Store) {
	raceFirstKey(t, []store.Store{a, b}, 2*sharedRotations)
}

// raceRotateKey starts n RotateKeys at once, the i-th through
// handles[i%len(handles)] with a key of its own and prev, and checks that
// exactly one succeeded, the others failing with ErrConflict, that the
// winner's key is the only active one and every key active before is
// retired at its NotBefore, on every handle. It returns the winner.
func raceRotateKey(t *testing.T, handles []store.Store, n int, prev string) store.Key {
	t.Helper()
	errs := make([]error, n)
	offered := make([]store.Key, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		s := handles[i%len(handles)]
		offered[i] = store.Key{ID: fmt.Sprintf("r%s-%d", prev, i), Algorithm: "EdDSA", Private: fmt.Appendf(nil, "private-%d", i),
			CreatedAt: t0, NotBefore: t0.Add(time.Duration(i+1) * time.Second)}
		wg.Go(func() {
			<-start
			errs[i] = s.RotateKey(t.Context(), offered[i], prev)
		})
	}
	close(start)
	wg.Wait()
	var winner store.Key
	for i, err := range errs {
		switch {
		case err == nil && winner.ID != "":
			t.Fatalf("two rotations from %q succeeded: %s and %s", prev, winner.ID, offered[i].ID)
		case err == nil:
			winner = offered[i]
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("rotation %d: %v, want store.ErrConflict", i, err)
		}
	}
	if winner.ID == "" {
		t.Fatalf("none of %d rotations from %q succeeded", n, prev)
	}
	for i, s := range handles {
		ks, err := s.ListKeys(t.Context())
		must(t, err)
		for _, k := range ks {
			active := k.RetiredAt.IsZero() && k.RevokedAt.IsZero()
			if k.ID == winner.ID && !sameKey(k, winner) || k.ID != winner.ID && active {
				t.Fatalf("handle %d after the rotation from %q: key %+v; want only %s active", i, prev, k, winner.ID)
			}
			if k.ID == prev && !k.RetiredAt.Equal(winner.NotBefore) {
				t.Fatalf("handle %d: the rotated key retires at %v, want the winner's NotBefore %v", i, k.RetiredAt, winner.NotBefore)
			}
		}
	}
	return winner
}

// RotateKey is a compare-and-set on the newest active key: from none, then
// from the key it made, exactly one of 20 concurrent rotations wins; a
// rotation from a key that is no longer the newest active one, or with a
// taken kid, changes nothing.
func testRotateKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := raceRotateKey(t, []store.Store{s}, sharedRotations, "")
	second := raceRotateKey(t, []store.Store{s}, sharedRotations, first.ID)
	before, err := s.ListKeys(ctx)
	must(t, err)
	late := store.Key{ID: "late", Algorithm: "EdDSA", Private: []byte("late"), CreatedAt: t0, NotBefore: t0.Add(time.Hour)}
	wantErr(t, s.RotateKey(ctx, late, first.ID), store.ErrConflict)
	wantErr(t, s.RotateKey(ctx, store.Key{ID: first.ID, Algorithm: "EdDSA", Private: []byte("x"), CreatedAt: t0}, second.ID), store.ErrExists)
	after, err := s.ListKeys(ctx)
	must(t, err)
	if len(after) != len(before) {
		t.Fatalf("refused rotations changed the keys: %d before, %d after", len(before), len(after))
	}
	for i := range after {
		if !sameKey(after[i], before[i]) {
			t.Fatalf("refused rotations changed key %s: %+v, was %+v", after[i].ID, after[i], before[i])
		}
	}
}

// 20 goroutines on each handle rotate from the same key at once: exactly
// one wins, on both handles.
func testSharedRotateKey(t *testing.T, a, b store.Store) {
	first := raceRotateKey(t, []store.Store{a, b}, 2*sharedRotations, "")
	raceRotateKey(t, []store.Store{a, b}, 2*sharedRotations, first.ID)
}

// A key's Use round-trips, and "active" is per Use: CreateKeyIfNone
// compares only with keys of the offered key's Use, and RotateKey compares
// with and retires only keys of the new key's Use, so that rotating the
// access-token key never retires the ID-token key, and the reverse.
func testKeyUses(t *testing.T, s store.Store) {
	ctx := t.Context()
	access := store.Key{ID: "a1", Algorithm: "EdDSA", Private: []byte("a1"), CreatedAt: t0}
	got, err := s.CreateKeyIfNone(ctx, access)
	must(t, err)
	if !sameKey(got, access) {
		t.Fatalf("first access key = %+v, want %+v", got, access)
	}
	// An active access key does not count as an ID key, nor the reverse.
	id := store.Key{ID: "i1", Algorithm: "RS256", Private: []byte("i1"), Use: store.UseID, CreatedAt: t0.Add(time.Second)}
	if got, err = s.CreateKeyIfNone(ctx, id); err != nil || !sameKey(got, id) {
		t.Fatalf("CreateKeyIfNone of an ID key beside an access key = %+v, %v; want it stored, %+v", got, err, id)
	}
	other := store.Key{ID: "a-other", Algorithm: "EdDSA", Private: []byte("x"), CreatedAt: t0.Add(2 * time.Second)}
	if got, err = s.CreateKeyIfNone(ctx, other); err != nil || !sameKey(got, access) {
		t.Fatalf("CreateKeyIfNone of an access key = %+v, %v; want the access key %+v, not the newer ID key", got, err, access)
	}
	otherID := store.Key{ID: "i-other", Algorithm: "RS256", Private: []byte("x"), Use: store.UseID, CreatedAt: t0.Add(2 * time.Second)}
	if got, err = s.CreateKeyIfNone(ctx, otherID); err != nil || !sameKey(got, id) {
		t.Fatalf("CreateKeyIfNone of an ID key = %+v, %v; want the ID key %+v", got, err, id)
	}

	// Rotating the access key: compared with and retiring access keys only.
	wantErr(t, s.RotateKey(ctx, store.Key{ID: "a-bad", Algorithm: "EdDSA", Private: []byte("x"), CreatedAt: t0}, id.ID), store.ErrConflict)
	a2 := store.Key{ID: "a2", Algorithm: "RS256", Private: []byte("a2"), CreatedAt: t0.Add(time.Minute), NotBefore: t0.Add(2 * time.Minute)}
	must(t, s.RotateKey(ctx, a2, access.ID))
	// And the ID key: compared with and retiring ID keys only.
	wantErr(t, s.RotateKey(ctx, store.Key{ID: "i-bad", Algorithm: "RS256", Private: []byte("x"), Use: store.UseID, CreatedAt: t0}, a2.ID), store.ErrConflict)
	i2 := store.Key{ID: "i2", Algorithm: "RS256", Private: []byte("i2"), Use: store.UseID, CreatedAt: t0.Add(time.Minute), NotBefore: t0.Add(3 * time.Minute)}
	must(t, s.RotateKey(ctx, i2, id.ID))

	ks, err := s.ListKeys(ctx)
	must(t, err)
	access.RetiredAt, id.RetiredAt = a2.NotBefore, i2.NotBefore
	want := []store.Key{access, id, a2, i2}
	if len(ks) != len(want) {
		t.Fatalf("ListKeys = %+v; want %+v", ks, want)
	}
	for i := range want {
		if !sameKey(ks[i], want[i]) {
			t.Fatalf("key %d = %+v; want %+v", i, ks[i], want[i])
		}
	}
	// Revoking the only active ID key leaves the access key active.
	must(t, s.RevokeKey(ctx, i2.ID, t0.Add(4*time.Minute)))
	if got, err = s.CreateKeyIfNone(ctx, otherID); err != nil || !sameKey(got, otherID) {
		t.Fatalf("CreateKeyIfNone of an ID key with none active = %+v, %v; want it stored", got, err)
	}
	if got, err = s.CreateKeyIfNone(ctx, other); err != nil || !sameKey(got, a2) {
		t.Fatalf("CreateKeyIfNone of an access key = %+v, %v; want %+v", got, err, a2)
	}
}

// Through two handles at once, 20 goroutines on each create the first
// ID key beside an active access key, then rotate the access key and the
// ID key, each from its own: of each race exactly one wins, and neither
// Use's race touches the other's keys.
func testSharedKeyUses(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	access := store.Key{ID: "access", Algorithm: "EdDSA", Private: []byte("access"), CreatedAt: t0}
	must(t, a.CreateKey(ctx, access))
	n := 2 * sharedRotations
	got := make([]store.Key, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		s := []store.Store{a, b}[i%2]
		k := store.Key{ID: fmt.Sprint("id", i), Algorithm: "RS256", Private: []byte("x"), Use: store.UseID, CreatedAt: t0}
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.CreateKeyIfNone(ctx, k)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		must(t, errs[i])
		if got[i].ID != got[0].ID || got[i].Use != store.UseID {
			t.Fatalf("caller %d got %+v, caller 0 %+v; want one ID key for all", i, got[i], got[0])
		}
	}
	idKey := got[0]

	// Rotations of both uses at once, half of each through each handle.
	start = make(chan struct{})
	won := make([]bool, 2*n)
	offered := make([]store.Key, 2*n)
	for i := range 2 * n {
		s := []store.Store{a, b}[i%2]
		use, prev := store.UseAccess, access.ID
		if i >= n {
			use, prev = store.UseID, idKey.ID
		}
		offered[i] = store.Key{ID: fmt.Sprint("rot", i), Algorithm: "EdDSA", Private: []byte("x"), Use: use, CreatedAt: t0, NotBefore: t0.Add(time.Duration(i+1) * time.Second)}
		wg.Go(func() {
			<-start
			err := s.RotateKey(ctx, offered[i], prev)
			if err != nil && !errors.Is(err, store.ErrConflict) {
				t.Errorf("rotation %d: %v", i, err)
			}
			won[i] = err == nil
		})
	}
	close(start)
	wg.Wait()
	winners := map[string]store.Key{}
	for i, w := range won {
		if w {
			if prev, ok := winners[offered[i].Use]; ok {
				t.Fatalf("two rotations of use %q won: %s and %s", offered[i].Use, prev.ID, offered[i].ID)
			}
			winners[offered[i].Use] = offered[i]
		}
	}
	if len(winners) != 2 {
		t.Fatalf("winners %v; want one rotation of each use", winners)
	}
	for h, s := range []store.Store{a, b} {
		ks, err := s.ListKeys(ctx)
		must(t, err)
		for _, k := range ks {
			active := k.RetiredAt.IsZero() && k.RevokedAt.IsZero()
			w := winners[k.Use]
			switch {
			case k.ID == w.ID && !sameKey(k, w), k.ID != w.ID && active:
				t.Fatalf("handle %d: key %+v; want only %s active for use %q", h, k, w.ID, k.Use)
			case k.ID == access.ID && !k.RetiredAt.Equal(winners[store.UseAccess].NotBefore),
				k.ID == idKey.ID && !k.RetiredAt.Equal(winners[store.UseID].NotBefore):
				t.Fatalf("handle %d: key %s retired at %v, not at its own use's successor's NotBefore", h, k.ID, k.RetiredAt)
			}
		}
	}
}
