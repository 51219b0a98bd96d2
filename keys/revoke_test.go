package keys_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/verify"
)

// kids returns the kids the Set's JWKS publishes, in order.
func kids(t *testing.T, s *keys.Set) []string {
	t.Helper()
	var out []string
	for _, k := range jwks(t, s).Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// stored returns the key kid as the store has it.
func stored(t *testing.T, st store.Store, kid string) store.Key {
	t.Helper()
	all, err := st.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		if k.ID == kid {
			return k
		}
	}
	t.Fatalf("kid %s is not stored", kid)
	return store.Key{}
}

// Revoking the key that signs stores a new one of the same algorithm
// first; after a Reload the revoked key neither signs nor is published.
func TestRevokeSigningKey(t *testing.T) {
	for _, alg := range []string{keys.EdDSA, keys.ES256} {
		t.Run(alg, func(t *testing.T) {
			ctx := t.Context()
			st := memory.New()
			s, err := keys.Load(ctx, st, alg, time.Hour, t0)
			if err != nil {
				t.Fatal(err)
			}
			old := s.ActiveKeyID()
			at := t0.Add(time.Minute)
			next, err := keys.Revoke(ctx, st, old, "", at)
			if err != nil {
				t.Fatal(err)
			}
			if next.ID == "" || next.ID == old || next.Algorithm != alg {
				t.Fatalf("new key %q (%s), want a new %s key", next.ID, next.Algorithm, alg)
			}
			if k := stored(t, st, old); !k.RevokedAt.Equal(at) || k.RetiredAt.IsZero() {
				t.Fatalf("revoked key in the store: revoked %v, retired %v", k.RevokedAt, k.RetiredAt)
			}
			if k := stored(t, st, next.ID); !k.RetiredAt.IsZero() || !k.RevokedAt.IsZero() {
				t.Fatalf("new key in the store: retired %v, revoked %v", k.RetiredAt, k.RevokedAt)
			}
			// Until it reloads, the Set answers from its last Reload.
			if !s.Published(old) || s.ActiveKeyID() != old {
				t.Fatal("the Set changed before Reload")
			}
			if err := s.Reload(ctx, at); err != nil {
				t.Fatal(err)
			}
			if got := kids(t, s); !slices.Equal(got, []string{next.ID}) || s.Published(old) || !s.Published(next.ID) {
				t.Fatalf("published %v after revoking %s, want only %s", got, old, next.ID)
			}
			if s.ActiveKeyID() != next.ID {
				t.Fatalf("signing kid %s, want %s", s.ActiveKeyID(), next.ID)
			}
			tok, _ := s.Sign(map[string]any{"sub": "a"})
			verifyWith(t, jwks(t, s), tok)
		})
	}
}

// Revoking a retired key (still published for its tokens) removes it at
// once; the signing key stays, and a retired key that was not revoked
// stays published.
func TestRevokeRetiredKey(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	first := s.ActiveKeyID()
	second, err := keys.Rotate(ctx, st, keys.EdDSA, t0.Add(time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	third, err := keys.Rotate(ctx, st, keys.EdDSA, t0.Add(2*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := kids(t, s); !slices.Equal(got, []string{first, second.ID, third.ID}) {
		t.Fatalf("published %v during the overlap", got)
	}
	next, err := keys.Revoke(ctx, st, second.ID, "", t0.Add(3*time.Minute))
	if err != nil || next.ID != "" {
		t.Fatalf("Revoke of a retired key: new key %q, %v; want none", next.ID, err)
	}
	if err := s.Reload(ctx, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := kids(t, s); !slices.Equal(got, []string{first, third.ID}) || s.ActiveKeyID() != third.ID {
		t.Fatalf("published %v, signing %s; want %v and %s", got, s.ActiveKeyID(), []string{first, third.ID}, third.ID)
	}
}

// A revoked key is left out whatever its RetiredAt: zero (a store that did
// not retire it), or recent enough that a retired key would be published.
// A Set whose every key is revoked makes a new one.
func TestReloadLeavesRevokedKeysOut(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	gen := func(created time.Time, retired, revoked time.Time) store.Key {
		k, err := keys.Generate(keys.EdDSA, created)
		if err != nil {
			t.Fatal(err)
		}
		k.RetiredAt, k.RevokedAt = retired, revoked
		if err := st.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	var zero time.Time
	signs := gen(t0, zero, zero)
	retired := gen(t0, t0.Add(time.Minute), zero)
	gen(t0, t0.Add(time.Minute), t0.Add(time.Minute))             // revoked, recently retired
	newest := gen(t0.Add(time.Minute), zero, t0.Add(time.Minute)) // revoked, never retired: newest, yet it must not sign
	s, err := keys.Load(ctx, st, "", time.Hour, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(t, s); !slices.Equal(got, []string{signs.ID, retired.ID}) || s.ActiveKeyID() != signs.ID {
		t.Fatalf("published %v, signing %s; want %v and %s", got, s.ActiveKeyID(), []string{signs.ID, retired.ID}, signs.ID)
	}
	if s.Published(newest.ID) {
		t.Fatal("Published reports a revoked key")
	}

	if err := st.RevokeKey(ctx, signs.ID, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeKey(ctx, retired.ID, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(ctx, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	all := accessKeys(t, st)
	if got := kids(t, s); len(all) != 5 || !slices.Equal(got, []string{all[4].ID}) || s.ActiveKeyID() != all[4].ID {
		t.Fatalf("every key revoked: %d keys stored, published %v, signing %s; want a fifth key that signs", len(all), got, s.ActiveKeyID())
	}
}

// Check reads the store: a key revoked by another process (here, Revoke
// called on the store as the CLI does) is refused at once, and the Set
// reloads so that it stops publishing it and signs with the new key.
func TestCheckSeesAnotherProcess(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	old := s.ActiveKeyID()
	if err := s.Check(ctx, old, t0); err != nil {
		t.Fatalf("Check of the signing key: %v", err)
	}
	next, err := keys.Revoke(ctx, st, old, "", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Published(old) {
		t.Fatal("Published changed without a Reload")
	}
	if err := s.Check(ctx, old, t0.Add(time.Minute)); !errors.Is(err, keys.ErrRevoked) {
		t.Fatalf("Check of the revoked key: %v, want ErrRevoked", err)
	}
	if s.Published(old) || s.ActiveKeyID() != next.ID {
		t.Fatalf("after Check: published %v, signing %s; want the revoked key gone and %s signing", kids(t, s), s.ActiveKeyID(), next.ID)
	}

	// A key rotated in by another process is accepted, and reloaded.
	rotated, err := keys.Rotate(ctx, st, keys.ES256, t0.Add(2*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Published(rotated.ID) {
		t.Fatal("Published knows a key before Reload")
	}
	if err := s.Check(ctx, rotated.ID, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("Check of a key made by another process: %v", err)
	}
	if !s.Published(rotated.ID) || s.ActiveKeyID() != rotated.ID {
		t.Fatalf("after Check: published %v, signing %s", kids(t, s), s.ActiveKeyID())
	}

	// Unknown, and retired for longer than publishFor.
	if err := s.Check(ctx, "nope", t0.Add(2*time.Minute)); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("Check of an unknown kid: %v", err)
	}
	if err := s.Check(ctx, next.ID, t0.Add(2*time.Minute+time.Hour)); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("Check of a key retired an hour ago: %v", err)
	}
	if err := s.Check(ctx, next.ID, t0.Add(2*time.Minute+time.Hour-1)); err != nil {
		t.Fatalf("Check of a key retired just under an hour ago: %v", err)
	}
}

// failingStore is a memory store whose ListKeys fails while down is set.
type failingStore struct {
	*memory.Store
	mu   sync.Mutex
	down bool
}

func (f *failingStore) ListKeys(ctx context.Context) ([]store.Key, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return nil, store.ErrUnavailable
	}
	return f.Store.ListKeys(ctx)
}

// When the store cannot answer, Check says so: neither revoked nor
// unknown, and the Set keeps its keys.
func TestCheckStoreDown(t *testing.T) {
	st := &failingStore{Store: memory.New()}
	s, err := keys.Load(t.Context(), st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	kid := s.ActiveKeyID()
	st.mu.Lock()
	st.down = true
	st.mu.Unlock()
	err = s.Check(t.Context(), kid, t0)
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, keys.ErrRevoked) || errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("Check with the store down: %v", err)
	}
	if _, err := keys.Revoke(t.Context(), st, kid, "", t0); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Revoke with the store down: %v", err)
	}
	if !s.Published(kid) || s.ActiveKeyID() != kid {
		t.Fatal("the Set changed")
	}
}

func TestRevokeUnknownAndTwice(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Revoke(ctx, st, "nope", "", t0); !errors.Is(err, keys.ErrUnknownKey) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Revoke of an unknown kid: %v", err)
	}
	if _, err := keys.Revoke(ctx, st, s.ActiveKeyID(), "HS256", t0); !errors.Is(err, keys.ErrAlgorithm) {
		t.Fatalf("Revoke with a bad algorithm: %v", err)
	}
	if all := accessKeys(t, st); len(all) != 1 || !all[0].RevokedAt.IsZero() || !all[0].RetiredAt.IsZero() {
		t.Fatalf("a failed Revoke changed the store: %+v", all)
	}
	kid := s.ActiveKeyID()
	first, err := keys.Revoke(ctx, st, kid, "", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	again, err := keys.Revoke(ctx, st, kid, "", t0.Add(2*time.Minute))
	if err != nil || again.ID != "" {
		t.Fatalf("second Revoke: new key %q, %v; want none", again.ID, err)
	}
	all := accessKeys(t, st)
	if len(all) != 2 || all[1].ID != first.ID || !stored(t, st, kid).RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after two Revokes: %d keys, revoked at %v", len(all), stored(t, st, kid).RevokedAt)
	}
}

// Sign, JWKS, Published and Check run while another goroutine revokes and
// reloads (for the race detector); every token signed verifies against the
// JWKS read after it, or was signed by the key being revoked.
func TestRevokeConcurrent(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				kid := s.ActiveKeyID()
				if _, err := s.Sign(map[string]any{"sub": "a"}); err != nil {
					t.Error(err)
				}
				_ = s.JWKS()
				_ = s.Published(kid)
				if err := s.Check(ctx, kid, t0.Add(time.Minute)); err != nil && !errors.Is(err, keys.ErrRevoked) {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 5 {
			at := t0.Add(time.Duration(i) * time.Second)
			if _, err := keys.Revoke(ctx, st, s.ActiveKeyID(), "", at); err != nil {
				t.Error(err)
			}
			if err := s.Reload(ctx, at); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	all := accessKeys(t, st)
	if err := s.Reload(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 || s.ActiveKeyID() != all[5].ID || !slices.Equal(kids(t, s), []string{all[5].ID}) {
		t.Fatalf("%d keys, signing %s, published %v; want 6 keys and only the last one published", len(all), s.ActiveKeyID(), kids(t, s))
	}
}

// End to end: a resource server (package verify) refuses the tokens of a
// revoked key once its copy of the JWKS lapses, here a max-age of 60s.
func TestRevokedKeyRefusedByVerifier(t *testing.T) {
	ctx := t.Context()
	st := memory.New()
	s, err := keys.Load(ctx, st, "", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		_, _ = w.Write(s.JWKS())
	}))
	t.Cleanup(srv.Close)
	clock := clocktest.New(t0)
	v := verify.New("https://issuer.example", &verify.Options{JWKSURL: srv.URL, Now: clock.Now, HTTPClient: srv.Client()})
	claims := map[string]any{"iss": "https://issuer.example", "aud": "https://issuer.example", "sub": "alice", "exp": t0.Add(time.Hour).Unix()}
	tok, err := s.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.Verify(ctx, tok); err != nil || c.KeyID != s.ActiveKeyID() {
		t.Fatalf("before the revocation: %v", err)
	}
	if _, err := keys.Revoke(ctx, st, s.ActiveKeyID(), "", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(ctx, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	fresh, err := s.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(47 * time.Second) // before the refresh point (48s): the cached JWKS answers
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("within the JWKS's lifetime: %v", err)
	}
	clock.Advance(14 * time.Second) // 61s: lapsed, so Verify fetches the JWKS first
	if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("after the JWKS lapsed: %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
}
