package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// UpdateClient replaces every field but ID and CreatedAt, keeps the
// client's families, and refuses an unknown client, a stale prev and an
// update that would change the ID, the CreatedAt or hold an invalid
// MintFor, changing nothing.
func testUpdateClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	prev := store.Client{ID: "c", SecretHash: []byte{1, 2, 3}, Grants: []string{"refresh_token"}, CreatedAt: t0}
	must(t, s.CreateClient(ctx, prev))
	f, _ := newFamily(t, s, "f1", "c", "bob")
	prev, err := s.GetClient(ctx, "c")
	must(t, err)

	next := store.Client{ID: "c", SecretHash: []byte{4, 5, 6}, Grants: []string{"refresh_token", "password"}, Scopes: []string{"read", "write"},
		Mint: true, MintFor: []string{"spa"}, Origins: []string{"https://app.example.com"}, Cookie: true,
		RedirectURIs: []string{"https://app.example.com/cb"}, PostLogoutRedirectURIs: []string{"https://app.example.com/"},
		ThirdParty: true, Resources: []string{"https://api.example.com"},
		PreviousSecretHash: []byte{1, 2, 3}, PreviousSecretExpiresAt: t0.Add(24 * time.Hour), CreatedAt: t0}
	must(t, s.UpdateClient(ctx, prev, next))
	got, err := s.GetClient(ctx, "c")
	must(t, err)
	if !got.Equal(next) {
		t.Fatalf("after UpdateClient, GetClient = %+v; want %+v", got, next)
	}
	if all, err := s.ListClients(ctx); err != nil || len(all) != 1 || !all[0].Equal(next) {
		t.Fatalf("ListClients = %+v, %v; want the updated client", all, err)
	}
	if fam, err := s.GetFamily(ctx, f.ID); err != nil || !fam.RevokedAt.IsZero() {
		t.Fatalf("family after UpdateClient = %+v, %v; want it unrevoked", fam, err)
	}

	// A stale prev: the update changes nothing.
	stale := next
	stale.Scopes = []string{"admin"}
	wantErr(t, s.UpdateClient(ctx, prev, stale), store.ErrConflict)
	// The previous secret ends: nil and zero read back as none.
	ended := next
	ended.PreviousSecretHash, ended.PreviousSecretExpiresAt = nil, time.Time{}
	must(t, s.UpdateClient(ctx, got, ended))
	got, err = s.GetClient(ctx, "c")
	must(t, err)
	if !got.Equal(ended) || got.PreviousSecretHash != nil || !got.PreviousSecretExpiresAt.IsZero() {
		t.Fatalf("after ending the previous secret, GetClient = %+v", got)
	}

	unknown := store.Client{ID: "nobody", CreatedAt: t0}
	wantErr(t, s.UpdateClient(ctx, unknown, unknown), store.ErrNotFound)
	for name, bad := range map[string]store.Client{
		"another ID":        {ID: "d", CreatedAt: t0},
		"another CreatedAt": {ID: "c", CreatedAt: t0.Add(time.Second)},
		"invalid MintFor":   {ID: "c", MintFor: []string{"a b"}, CreatedAt: t0},
	} {
		wantErr(t, s.UpdateClient(ctx, got, bad), store.ErrInvalid)
		if now, err := s.GetClient(ctx, "c"); err != nil || !now.Equal(ended) {
			t.Fatalf("UpdateClient refused (%s) changed the client: %+v, %v", name, now, err)
		}
	}
	if _, err := s.GetClient(ctx, "d"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused update created client d: %v", err)
	}
}

// updateRounds is how many updates race in the concurrency tests.
const updateRounds = 16

// Of updateRounds UpdateClients from the same prev, exactly one
// succeeds and the others find ErrConflict.
func testConcurrentUpdateOne(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	must(t, a.CreateClient(ctx, store.Client{ID: "c", CreatedAt: t0}))
	prev, err := a.GetClient(ctx, "c")
	must(t, err)
	var wg sync.WaitGroup
	errs := make([]error, updateRounds)
	for i := range updateRounds {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			next := prev
			next.Scopes = []string{fmt.Sprintf("s%d", i)}
			errs[i] = s.UpdateClient(ctx, prev, next)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("UpdateClient: %v; want nil or ErrConflict", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent updates from one client succeeded; want 1", ok, updateRounds)
	}
}

// addOrigin adds origin to client id by read, compare-and-set and
// retry on ErrConflict, as `tokend client update` does.
func addOrigin(ctx context.Context, s store.Store, id, origin string) error {
	for {
		prev, err := s.GetClient(ctx, id)
		if err != nil {
			return err
		}
		next := prev
		next.Origins = append(slices.Clone(prev.Origins), origin)
		err = s.UpdateClient(ctx, prev, next)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

// updateRounds updates that each add their own origin, racing, lose
// none: every origin is there at the end.
func testConcurrentUpdatesKeepAll(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	must(t, a.CreateClient(ctx, store.Client{ID: "c", SecretHash: []byte{1}, CreatedAt: t0}))
	var wg sync.WaitGroup
	errs := make([]error, updateRounds)
	for i := range updateRounds {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { errs[i] = addOrigin(ctx, s, "c", fmt.Sprintf("https://o%d.example", i)) })
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	for _, s := range []store.Store{a, b} {
		got, err := s.GetClient(ctx, "c")
		must(t, err)
		if len(got.Origins) != updateRounds || !bytes.Equal(got.SecretHash, []byte{1}) {
			t.Fatalf("after %d concurrent updates: %d origins %v; want every one", updateRounds, len(got.Origins), got.Origins)
		}
		for i := range updateRounds {
			if !slices.Contains(got.Origins, fmt.Sprintf("https://o%d.example", i)) {
				t.Fatalf("origin %d lost: %v", i, got.Origins)
			}
		}
	}
}

// one runs a two-handle test on one handle.
func one(fn func(t *testing.T, a, b store.Store)) func(t *testing.T, s store.Store) {
	return func(t *testing.T, s store.Store) { fn(t, s, s) }
}
