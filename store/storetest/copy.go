package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/storecopy"
)

// RunImporter checks a backend's store.Importer (what `tokend copy` needs)
// and storecopy between two stores of the backend: newStore returns a
// new, empty store (Run's contract); RunImporter closes it. The records
// carry times around the real now, as a store with its own clock (and
// Redis's key expiry) sees them: pass stores on their default clock, so
// that ImportFamily is shown not to rebase.
func RunImporter(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore func(t *testing.T) store.Store)
	}{
		{"ImportFamily", testImportFamily},
		{"Lists", testImporterLists},
		{"Copy", testCopy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, func(t *testing.T) store.Store {
				s := newStore(t)
				t.Cleanup(func() { _ = s.Close() })
				return s
			})
		})
	}
}

// importer is st's store.Importer, or the test fails.
func importer(t *testing.T, st store.Store) store.Importer {
	t.Helper()
	imp, ok := store.Capability[store.Importer](st)
	if !ok {
		t.Fatalf("%T has no store.Importer", st)
	}
	return imp
}

// now is the real time to the microsecond, as every backend keeps it.
func now() time.Time { return time.Now().Truncate(time.Microsecond).UTC() }

// movedFamily is a family that has rotated gen times, as a store being
// copied holds it: current and previous hash, rotated, with its session
// and audience, created an hour before at.
func movedFamily(id string, at time.Time, gen int64) store.Family {
	return store.Family{ID: id, ClientID: "app", Subject: "alice", Scope: "read write", Claims: []byte(`{"tier":"gold"}`),
		AccessTTL: 90 * time.Second, CreatedAt: at.Add(-time.Hour), LastUsedAt: at.Add(-time.Minute),
		IdleExpiresAt: at.Add(29 * time.Minute), ExpiresAt: at.Add(23 * time.Hour), Generation: gen,
		TokenHash: hash(), PreviousHash: hash(), RotatedAt: at.Add(-time.Minute), SessionID: "sess1",
		Audience: []string{"https://api.example.com"}}
}

// ImportFamily stores every field as given (no rebase onto the store's
// clock), refuses a taken ID without changing it, and the imported family
// rotates from its generation on, and detects reuse of its previous one.
func testImportFamily(t *testing.T, newStore func(t *testing.T) store.Store) {
	ctx := t.Context()
	s := newStore(t)
	imp := importer(t, s)
	at := now()
	f := movedFamily("fam-5", at, 5)
	f.CreatedAt = at.Add(-48 * time.Hour) // far from the store's now: a rebase would show
	must(t, imp.ImportFamily(ctx, f))
	got, err := s.GetFamily(ctx, f.ID)
	must(t, err)
	if !storecopy.Same(got, f) {
		t.Fatalf("imported family reads back as\n%+v\nwant\n%+v", got, f)
	}
	other := movedFamily("fam-5", at, 9)
	wantErr(t, imp.ImportFamily(ctx, other), store.ErrExists)
	if got, _ := s.GetFamily(ctx, f.ID); !storecopy.Same(got, f) {
		t.Fatalf("a refused import changed the family: %+v", got)
	}
	wantErr(t, imp.ImportFamily(ctx, movedFamily("bad\x00id", at, 1)), store.ErrInvalid)

	revoked := movedFamily("fam-revoked", at, 2)
	revoked.RevokedAt, revoked.RevokeReason = at.Add(-time.Second), "logout"
	must(t, imp.ImportFamily(ctx, revoked))
	if got, err := s.GetFamily(ctx, revoked.ID); err != nil || !storecopy.Same(got, revoked) {
		t.Fatalf("imported revoked family: %+v, %v", got, err)
	}

	// The current token rotates; the one before it, presented after the
	// grace window, is reuse.
	next := hash()
	res, err := s.Rotate(ctx, store.RotateRequest{FamilyID: f.ID, Generation: 5, Old: f.TokenHash, New: next, ClientID: "app",
		Now: now(), Grace: time.Second, IdleExpiresAt: now().Add(30 * time.Minute)})
	must(t, err)
	if res.Outcome != store.Rotated || res.Family.Generation != 6 {
		t.Fatalf("rotate the imported current token: %v, generation %d", res.Outcome, res.Family.Generation)
	}
	res, err = s.Rotate(ctx, store.RotateRequest{FamilyID: f.ID, Generation: 5, Old: f.TokenHash, New: hash(), ClientID: "app",
		Now: now(), Grace: 0, IdleExpiresAt: now().Add(30 * time.Minute)})
	must(t, err)
	if res.Outcome != store.ReuseDetected {
		t.Fatalf("generation 5 again after it rotated: %v, want reuse_detected", res.Outcome)
	}
}

// The lists return what the store holds, ordered by their keys.
func testImporterLists(t *testing.T, newStore func(t *testing.T) store.Store) {
	ctx := t.Context()
	s := newStore(t)
	imp := importer(t, s)
	at := now()
	for _, n := range []string{"zeta", "alpha"} {
		_, err := s.Secret(ctx, n, []byte("value of "+n))
		must(t, err)
	}
	secrets, err := imp.ListSecrets(ctx)
	must(t, err)
	if fmt.Sprint(secrets) != fmt.Sprint([]store.StoredSecret{{Name: "alpha", Value: []byte("value of alpha")}, {Name: "zeta", Value: []byte("value of zeta")}}) {
		t.Fatalf("ListSecrets = %v", secrets)
	}

	sessions := []store.Session{
		{ID: "s1", Hash: hash(), Subject: "alice", AuthTime: at.Add(-time.Hour), CreatedAt: at.Add(-time.Hour), ExpiresAt: at.Add(time.Hour)},
		{ID: "s2", Hash: hash(), Subject: "bob", AuthTime: at.Add(-time.Minute), CreatedAt: at.Add(-time.Minute), ExpiresAt: at.Add(time.Hour), EndedAt: at},
	}
	for _, sess := range []store.Session{sessions[1], sessions[0]} {
		must(t, s.CreateSession(ctx, sess))
	}
	gotSessions, err := imp.ListSessions(ctx)
	must(t, err)
	if !storecopy.Same(gotSessions, sessions) {
		t.Fatalf("ListSessions = %+v, want %+v", gotSessions, sessions)
	}

	for _, id := range []string{"app", "other"} {
		must(t, s.CreateClient(ctx, store.Client{ID: id, CreatedAt: at}))
	}
	consents := []store.Consent{
		{Subject: "alice", ClientID: "app", Scopes: []string{"read"}, GrantedAt: at},
		{Subject: "alice", ClientID: "other", Scopes: []string{"read", "write"}, GrantedAt: at.Add(-time.Hour)},
		{Subject: "bob", ClientID: "app", GrantedAt: at},
	}
	for _, i := range []int{2, 0, 1} {
		must(t, s.PutConsent(ctx, consents[i]))
	}
	gotConsents, err := imp.ListConsents(ctx)
	must(t, err)
	if !storecopy.Same(gotConsents, consents) {
		t.Fatalf("ListConsents = %+v, want %+v", gotConsents, consents)
	}

	denied := []store.RevokedAccessToken{{JTI: "jti-a", ExpiresAt: at.Add(time.Hour)}, {JTI: "jti-b", ExpiresAt: at.Add(time.Minute)}}
	must(t, s.RevokeAccessToken(ctx, "jti-b", denied[1].ExpiresAt))
	must(t, s.RevokeAccessToken(ctx, "jti-a", denied[0].ExpiresAt))
	gotDenied, err := imp.ListRevokedAccessTokens(ctx)
	must(t, err)
	if !storecopy.Same(gotDenied, denied) {
		t.Fatalf("ListRevokedAccessTokens = %+v, want %+v", gotDenied, denied)
	}
}

// fill stores one record of every kind Copy carries, and one ended record
// of each kind that ends, into s.
func fill(ctx context.Context, t *testing.T, s store.Store, at time.Time) {
	t.Helper()
	must(t, s.CreateClient(ctx, store.Client{ID: "app", SecretHash: hash(), Grants: []string{"refresh_token"}, Origins: []string{"https://app.example"}, CreatedAt: at,
		PreviousSecretHash: hash(), PreviousSecretExpiresAt: at.Add(time.Hour)})) // in a secret rotation's overlap
	must(t, s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "$argon2id$fake", CreatedAt: at}))
	must(t, s.CreateKey(ctx, store.Key{ID: "k1", Algorithm: "EdDSA", Private: []byte("sealed bytes, never read"), CreatedAt: at.Add(-time.Hour), RetiredAt: at}))
	must(t, s.CreateKey(ctx, store.Key{ID: "k2", Algorithm: "EdDSA", Private: []byte("other sealed bytes"), CreatedAt: at, NotBefore: at}))
	_, err := s.Secret(ctx, "refresh", []byte("ring"))
	must(t, err)
	must(t, s.CreateSession(ctx, store.Session{ID: "sess1", Hash: hash(), Subject: "alice", AuthTime: at, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}))
	must(t, s.CreateSession(ctx, store.Session{ID: "sess-ended", Hash: hash(), Subject: "alice", AuthTime: at, CreatedAt: at, ExpiresAt: at.Add(time.Hour), EndedAt: at.Add(-time.Second)}))
	must(t, s.PutConsent(ctx, store.Consent{Subject: "alice", ClientID: "app", Scopes: []string{"read"}, GrantedAt: at}))
	imp := importer(t, s)
	must(t, imp.ImportFamily(ctx, movedFamily("fam-live", at, 3)))
	ended := movedFamily("fam-revoked", at, 1)
	ended.RevokedAt, ended.RevokeReason = at.Add(-time.Second), "logout"
	must(t, imp.ImportFamily(ctx, ended))
	must(t, s.RevokeAccessToken(ctx, "jti-live", at.Add(time.Hour)))
}

// Copy between two stores of the backend: every live record arrives as
// it was, a second Copy copies nothing, Check passes, and a target whose
// record differs is a conflict that Copy refuses, writing nothing.
func testCopy(t *testing.T, newStore func(t *testing.T) store.Store) {
	ctx := t.Context()
	from, to := newStore(t), newStore(t)
	at := now()
	fill(ctx, t, from, at)
	counts, err := storecopy.Copy(ctx, from, to, nil)
	must(t, err)
	want := map[string][2]int{ // copied, skipped
		storecopy.KindSecrets: {1, 0}, storecopy.KindKeys: {2, 0}, storecopy.KindClients: {1, 0}, storecopy.KindUsers: {1, 0},
		storecopy.KindSessions: {1, 1}, storecopy.KindConsents: {1, 0}, storecopy.KindFamilies: {1, 1}, storecopy.KindDenied: {1, 0},
	}
	for _, c := range counts {
		if w := want[c.Kind]; c.Copied != w[0] || c.Skipped != w[1] || c.Present+c.Conflicting+c.Extra != 0 {
			t.Errorf("first copy, %s: %+v, want %d copied, %d skipped", c.Kind, c, w[0], w[1])
		}
	}
	if len(counts) != len(want) {
		t.Fatalf("counts of %d kinds, want %d", len(counts), len(want))
	}
	fam, err := to.GetFamily(ctx, "fam-live")
	must(t, err)
	if src, _ := from.GetFamily(ctx, "fam-live"); !storecopy.Same(fam, src) {
		t.Fatalf("copied family %+v, want %+v", fam, src)
	}
	c, err := to.GetClient(ctx, "app")
	must(t, err)
	if src, _ := from.GetClient(ctx, "app"); !storecopy.Same(c, src) || len(c.PreviousSecretHash) == 0 {
		t.Fatalf("copied client %+v, want %+v, its previous secret with it", c, src)
	}
	keys, err := to.ListKeys(ctx)
	must(t, err)
	if len(keys) != 2 || keys[0].ID != "k1" || string(keys[0].Private) != "sealed bytes, never read" {
		t.Fatalf("copied keys %+v", keys)
	}
	if denied, err := to.AccessTokenRevoked(ctx, "jti-live"); err != nil || !denied {
		t.Fatalf("copied deny-list: %v, %v", denied, err)
	}

	again, err := storecopy.Copy(ctx, from, to, nil)
	must(t, err)
	for _, c := range again {
		if c.Copied != 0 || c.Conflicting != 0 || c.Present != want[c.Kind][0] {
			t.Errorf("second copy, %s: %+v, want all present", c.Kind, c)
		}
	}
	if _, err := storecopy.Check(ctx, from, to, nil); err != nil {
		t.Fatalf("Check after Copy: %v", err)
	}

	// The family rotates on the target: the source's copy is now older.
	_, err = to.Rotate(ctx, store.RotateRequest{FamilyID: fam.ID, Generation: fam.Generation, Old: fam.TokenHash, New: hash(),
		Now: now(), Grace: time.Second, IdleExpiresAt: now().Add(time.Hour)})
	must(t, err)
	must(t, from.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "$argon2id$fake", CreatedAt: at}))
	counts, err = storecopy.Check(ctx, from, to, nil)
	if !errors.Is(err, storecopy.ErrConflict) {
		t.Fatalf("Check of differing stores: %v, want ErrConflict", err)
	}
	for _, c := range counts {
		want := [2]int{} // to copy, conflicting
		switch c.Kind {
		case storecopy.KindUsers:
			want = [2]int{1, 0}
		case storecopy.KindFamilies:
			want = [2]int{0, 1}
		}
		if c.Copied != want[0] || c.Conflicting != want[1] || c.Extra != 0 {
			t.Errorf("Check, %s: %+v, want %d to copy, %d conflicting", c.Kind, c, want[0], want[1])
		}
	}
	counts, err = storecopy.Copy(ctx, from, to, nil)
	if !errors.Is(err, storecopy.ErrConflict) {
		t.Fatalf("Copy onto a conflicting target: %v, want ErrConflict", err)
	}
	for _, c := range counts {
		if c.Kind == storecopy.KindFamilies && c.Conflicting != 1 {
			t.Errorf("families: %+v, want 1 conflicting", c)
		}
	}
	if _, err := to.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused Copy wrote user bob: %v", err)
	}
	if got, _ := to.GetFamily(ctx, fam.ID); got.Generation != fam.Generation+1 {
		t.Fatalf("a refused Copy overwrote the newer family: generation %d", got.Generation)
	}
}
