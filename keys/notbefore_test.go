package keys_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// signedBy returns the kid in the header of a token the Set signs now.
func signedBy(t *testing.T, s *keys.Set) string {
	t.Helper()
	tok, err := s.Sign(map[string]any{"sub": "a"})
	if err != nil {
		t.Fatal(err)
	}
	verifyWith(t, jwks(t, s), tok)
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func reload(t *testing.T, s *keys.Set, at time.Time) {
	t.Helper()
	if err := s.Reload(t.Context(), at); err != nil {
		t.Fatal(err)
	}
}

// The first key of an empty store has no NotBefore and signs at once.
func TestFirstKeySignsAtOnce(t *testing.T) {
	st := memory.New()
	s, err := keys.Load(t.Context(), st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	k := stored(t, st, s.ActiveKeyID())
	if !k.NotBefore.IsZero() || !k.CreatedAt.Equal(t0) {
		t.Fatalf("first key %+v; want created at %v, NotBefore zero", k, t0)
	}
	if kid := signedBy(t, s); kid != k.ID {
		t.Fatalf("token signed by %s, want the first key %s", kid, k.ID)
	}
}

// A key rotated with a lead is published at the next Reload but does not
// sign until its NotBefore, now + lead; from then on it signs, and the old
// key, retired at that same moment, stays published.
func TestRotateNotBefore(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	old := s.ActiveKeyID()
	const lead = 70 * time.Second
	at := t0.Add(time.Minute)
	k, err := keys.Rotate(ctx, st, keys.ES256, at, lead)
	if err != nil {
		t.Fatal(err)
	}
	start := at.Add(lead)
	if got := stored(t, st, k.ID); !got.NotBefore.Equal(start) || !k.NotBefore.Equal(start) {
		t.Fatalf("new key NotBefore = %v (returned %v), want %v", got.NotBefore, k.NotBefore, start)
	}
	if got := stored(t, st, old); !got.RetiredAt.Equal(start) {
		t.Fatalf("old key RetiredAt = %v, want the new key's NotBefore %v", got.RetiredAt, start)
	}

	for _, now := range []time.Time{at, start.Add(-time.Microsecond)} {
		reload(t, s, now)
		if ks := kids(t, s); !slices.Equal(ks, []string{old, k.ID}) {
			t.Fatalf("at %v: JWKS kids %v, want the old and the new key", now, ks)
		}
		if kid := signedBy(t, s); kid != old || s.ActiveKeyID() != old {
			t.Fatalf("at %v, before NotBefore: signed by %s (active %s), want the old %s", now, kid, s.ActiveKeyID(), old)
		}
	}

	reload(t, s, start)
	if kid := signedBy(t, s); kid != k.ID || s.ActiveKeyID() != k.ID {
		t.Fatalf("at NotBefore: signed by %s (active %s), want the new %s", kid, s.ActiveKeyID(), k.ID)
	}
	if ks := kids(t, s); !slices.Equal(ks, []string{old, k.ID}) {
		t.Fatalf("at NotBefore: JWKS kids %v, want the retired old key still published", ks)
	}
	if err := s.Check(ctx, old, start); err != nil {
		t.Fatalf("Check(old) after its retirement: %v, want nil while published", err)
	}
	if all := accessKeys(t, st); len(all) != 2 {
		t.Fatalf("%d keys stored; Reload must not create one while a key is due", len(all))
	}
}

// Revoking the signing key while a rotated key waits for its NotBefore
// makes a new key that signs at once (NotBefore = now): the compromised
// key stops at the next Reload, not at the pending key's NotBefore.
func TestRevokeSignsAtOnce(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	old := s.ActiveKeyID()
	pending, err := keys.Rotate(ctx, st, "", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	next, err := keys.Revoke(ctx, st, old, "", at)
	if err != nil {
		t.Fatal(err)
	}
	if next.ID == "" || next.ID == pending.ID || !next.NotBefore.Equal(at) {
		t.Fatalf("Revoke made %+v; want a new key with NotBefore %v", next, at)
	}
	reload(t, s, at)
	if kid := signedBy(t, s); kid != next.ID {
		t.Fatalf("after Revoke: signed by %s, want the new %s at once", kid, next.ID)
	}
	if ks := kids(t, s); slices.Contains(ks, old) {
		t.Fatalf("JWKS kids %v still hold the revoked %s", ks, old)
	}
	// Past the pending key's NotBefore the newest key still signs: the
	// pending one was retired by the rotation before it ever signed.
	reload(t, s, t0.Add(2*time.Hour))
	if kid := signedBy(t, s); kid != next.ID {
		t.Fatalf("after the pending key's NotBefore: signed by %s, want %s", kid, next.ID)
	}
}

// Sets loading at once on one empty store, as instances starting together
// do, create one first key between them and all sign with it.
func TestConcurrentLoadsAgree(t *testing.T) {
	const n = 20
	st := memory.New()
	sets := make([]*keys.Set, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			sets[i], errs[i] = keys.Load(t.Context(), st, "", time.Hour, t0)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	all := accessKeys(t, st)
	if len(all) != 1 {
		t.Fatalf("%d concurrent Loads stored %d keys, want 1", n, len(all))
	}
	for i, s := range sets {
		if s.ActiveKeyID() != all[0].ID || !slices.Equal(kids(t, s), []string{all[0].ID}) {
			t.Fatalf("Set %d signs with %s and publishes %v; want only %s", i, s.ActiveKeyID(), kids(t, s), all[0].ID)
		}
	}
	// And one ID-token key between them, which all sign ID tokens with.
	stored, err := st.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ids := slices.DeleteFunc(stored, func(k store.Key) bool { return k.Use != store.UseID })
	if len(ids) != 1 {
		t.Fatalf("%d concurrent Loads stored %d ID-token keys, want 1", n, len(ids))
	}
	for i, s := range sets {
		if s.IDKeyID() != ids[0].ID {
			t.Fatalf("Set %d signs ID tokens with %s, want %s", i, s.IDKeyID(), ids[0].ID)
		}
	}
}

// listedTogether is a store whose ListKeys returns only once every one of
// the callers the WaitGroup counts has listed: rotations that all saw the
// same keys.
type listedTogether struct {
	store.Store
	listed *sync.WaitGroup
}

func (l listedTogether) ListKeys(ctx context.Context) ([]store.Key, error) {
	ks, err := l.Store.ListKeys(ctx)
	l.listed.Done()
	l.listed.Wait()
	return ks, err
}

// Of 20 rotations run at once from one signing key, one stores its key and
// the others fail with ErrConcurrentRotation: one new key, the old one
// retired at its NotBefore, and a Set that reloads signs with the old key
// until then and with the new one from then on.
func TestConcurrentRotations(t *testing.T) {
	const n = 20
	ctx := t.Context()
	mem := memory.New()
	s, err := keys.Load(ctx, mem, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	var listed sync.WaitGroup
	listed.Add(n)
	st := listedTogether{mem, &listed}
	old := s.ActiveKeyID()
	made := make([]store.Key, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			made[i], errs[i] = keys.Rotate(ctx, st, "", t0, time.Minute)
		})
	}
	close(start)
	wg.Wait()
	var winner store.Key
	for i := range n {
		switch {
		case errs[i] == nil && winner.ID == "":
			winner = made[i]
		case errs[i] == nil:
			t.Fatalf("two rotations succeeded: %s and %s", winner.ID, made[i].ID)
		case !errors.Is(errs[i], keys.ErrConcurrentRotation) || !errors.Is(errs[i], store.ErrConflict):
			t.Fatalf("rotation %d: %v", i, errs[i])
		}
	}
	all := accessKeys(t, mem)
	if len(all) != 2 || all[1].ID != winner.ID || !all[0].RetiredAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("keys after %d concurrent rotations: %+v; want the old one retiring at the new one's NotBefore, and the new one", n, all)
	}
	for _, step := range []struct {
		at   time.Time
		want string
	}{{t0.Add(time.Minute - time.Second), old}, {t0.Add(time.Minute), winner.ID}} {
		if err := s.Reload(ctx, step.at); err != nil {
			t.Fatal(err)
		}
		if got := s.ActiveKeyID(); got != step.want {
			t.Fatalf("signing at %v: %s, want %s", step.at.Sub(t0), got, step.want)
		}
	}
}
