// Package storetest is the conformance suite every store.Store backend
// passes: Run(t, newStore) checks each method's contract, including the
// atomicity of refresh-token rotation, of the deletes that revoke and of
// the compare-and-sets of password hashes and of the first signing key
// under concurrency, and of the redemption of authorization codes; and
// RunShared(t, newPair) checks the same promises across two handles on one
// database, as two server processes see it.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// Run runs the suite. newStore returns a new, empty store; Run closes it.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Clients", testClients},
		{"UpdateClient", testUpdateClient},
		{"ConcurrentUpdateClient", one(testConcurrentUpdateOne)},
		{"ConcurrentUpdatesKeepAll", one(testConcurrentUpdatesKeepAll)},
		{"Users", testUsers},
		{"Keys", testKeys},
		{"CreateKeyIfNone", testCreateKeyIfNone},
		{"RotateKey", testRotateKey},
		{"KeyUses", testKeyUses},
		{"Secret", testSecret},
		{"CreateFamily", testCreateFamily},
		{"ListAndRevokeFamilies", testListRevoke},
		{"Rotate", testRotate},
		{"RepeatWithinGrace", testRepeat},
		{"ReuseAfterGrace", testReuse},
		{"RotateEnded", testRotateEnded},
		{"ConcurrentSameToken", testConcurrentSame},
		{"ConcurrentDifferentSuccessors", testConcurrentDifferent},
		{"ConcurrentFamilies", testConcurrentFamilies},
		{"DeleteExpired", testDeleteExpired},
		{"DeleteExpiredBoundaries", testDeleteExpiredBoundaries},
		{"DeleteClientRevokes", testDeleteClient},
		{"DeleteUserRevokes", testDeleteUser},
		{"RevokeKey", testRevokeKey},
		{"DenyList", testDenyList},
		{"UpdatePasswordHash", testUpdatePasswordHash},
		{"RewriteSecrets", testRewriteSecrets},
		{"Identifiers", testIdentifiers},
		{"ClientAuthorizationFields", testClientAuthorization},
		{"AuthorizationCode", testAuthorizationCode},
		{"AuthorizationCodeExpiry", testAuthorizationCodeExpiry},
		{"ConcurrentRedeem", testConcurrentRedeem},
		{"RedeemEndedSession", testRedeemEndedSession},
		{"Sessions", testSessions},
		{"Consents", testConsents},
		{"FamilySession", testFamilySession},
		{"FamilyAudience", testFamilyAudience},
		{"AuthorizationDeletes", testAuthorizationDeletes},
		{"AuthorizationDeleteExpired", testAuthorizationDeleteExpired},
		{"AuthorizationIdentifiers", testAuthorizationIdentifiers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

// t0 is the suite's "now": microsecond precision, as backends may store.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func hash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

func testClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := store.Client{ID: "b", SecretHash: []byte{1, 2, 3}, Grants: []string{"refresh_token", "password"}, Scopes: []string{"read"}, Mint: true, MintFor: []string{"spa", "mobile"},
		Origins: []string{"http://localhost:5173", "https://app.example.com"}, Cookie: true, CreatedAt: t0}
	must(t, s.CreateClient(ctx, c))
	c.Origins[0] = "https://changed.example" // the store keeps its own copy
	c.Origins = []string{"http://localhost:5173", "https://app.example.com"}
	must(t, s.CreateClient(ctx, store.Client{ID: "a", CreatedAt: t0}))
	wantErr(t, s.CreateClient(ctx, c), store.ErrExists)
	got, err := s.GetClient(ctx, "b")
	must(t, err)
	if got.ID != "b" || !bytes.Equal(got.SecretHash, c.SecretHash) || fmt.Sprint(got.Grants) != "[refresh_token password]" ||
		fmt.Sprint(got.Scopes) != "[read]" || !got.Mint || fmt.Sprint(got.MintFor) != "[spa mobile]" || !got.CreatedAt.Equal(t0) ||
		fmt.Sprint(got.Origins) != "[http://localhost:5173 https://app.example.com]" || !got.Cookie {
		t.Fatalf("GetClient = %+v", got)
	}
	got.Grants[0], got.MintFor[0], got.Origins[0] = "changed", "changed", "changed"
	again, _ := s.GetClient(ctx, "b")
	if again.Grants[0] != "refresh_token" || again.MintFor[0] != "spa" || again.Origins[0] != "http://localhost:5173" {
		t.Fatal("the store shares memory with its callers")
	}
	all, err := s.ListClients(ctx)
	must(t, err)
	if len(all) != 2 || all[0].ID != "a" || all[1].ID != "b" || len(all[0].SecretHash) != 0 ||
		len(all[0].MintFor) != 0 || fmt.Sprint(all[1].MintFor) != "[spa mobile]" ||
		len(all[0].Origins) != 0 || all[0].Cookie || fmt.Sprint(all[1].Origins) != "[http://localhost:5173 https://app.example.com]" || !all[1].Cookie {
		t.Fatalf("ListClients = %+v", all)
	}
	_, err = s.DeleteClient(ctx, "a", t0)
	must(t, err)
	_, err = s.DeleteClient(ctx, "a", t0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetClient(ctx, "a")
	wantErr(t, err, store.ErrNotFound)
}

func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, store.User{Name: "zed", PasswordHash: "$h2", CreatedAt: t0}))
	must(t, s.CreateUser(ctx, store.User{Name: "amy", PasswordHash: "$h1", CreatedAt: t0}))
	wantErr(t, s.CreateUser(ctx, store.User{Name: "amy"}), store.ErrExists)
	u, err := s.GetUser(ctx, "amy")
	must(t, err)
	if u.PasswordHash != "$h1" || !u.CreatedAt.Equal(t0) {
		t.Fatalf("GetUser = %+v", u)
	}
	all, err := s.ListUsers(ctx)
	must(t, err)
	if len(all) != 2 || all[0].Name != "amy" {
		t.Fatalf("ListUsers = %+v", all)
	}
	_, err = s.DeleteUser(ctx, "amy", t0)
	must(t, err)
	_, err = s.DeleteUser(ctx, "amy", t0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUser(ctx, "amy")
	wantErr(t, err, store.ErrNotFound)
}

func testKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, id := range []string{"k2", "k1", "k3"} {
		must(t, s.CreateKey(ctx, store.Key{ID: id, Algorithm: "EdDSA", Private: []byte(id), CreatedAt: t0.Add(time.Duration(i) * time.Second)}))
	}
	wantErr(t, s.CreateKey(ctx, store.Key{ID: "k1", Algorithm: "EdDSA", Private: []byte("x")}), store.ErrExists)
	must(t, s.RetireKey(ctx, "k2", t0.Add(time.Hour)))
	must(t, s.RetireKey(ctx, "k2", t0.Add(2*time.Hour))) // keeps the first
	wantErr(t, s.RetireKey(ctx, "nope", t0), store.ErrNotFound)
	ks, err := s.ListKeys(ctx)
	must(t, err)
	if len(ks) != 3 || ks[0].ID != "k2" || ks[1].ID != "k1" || ks[2].ID != "k3" {
		t.Fatalf("ListKeys order: %+v", ks)
	}
	if !ks[0].RetiredAt.Equal(t0.Add(time.Hour)) || !ks[1].RetiredAt.IsZero() || string(ks[1].Private) != "k1" {
		t.Fatalf("ListKeys = %+v", ks)
	}
}

func testSecret(t *testing.T, s store.Store) {
	ctx := t.Context()
	first, err := s.Secret(ctx, "x", []byte("one"))
	must(t, err)
	second, err := s.Secret(ctx, "x", []byte("two"))
	must(t, err)
	if string(first) != "one" || string(second) != "one" {
		t.Fatalf("Secret = %q then %q; want the first value both times", first, second)
	}
}

// token is what a server knows of a refresh token it issued: the family
// and generation it names, and its hash.
type token struct {
	family string
	gen    int64
	hash   []byte
}

// succ returns the token that follows tk, with hash h.
func (tk token) succ(h []byte) token { return token{tk.family, tk.gen + 1, h} }

// newFamily creates an active family and returns it and its first token.
func newFamily(t *testing.T, s store.Store, id, client, subject string) (store.Family, token) {
	t.Helper()
	f := store.Family{ID: id, ClientID: client, Subject: subject, Scope: "read write", Claims: []byte(`{"a":1}`),
		AccessTTL: time.Minute, CreatedAt: t0, LastUsedAt: t0, IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour),
		TokenHash: hash()}
	must(t, s.CreateFamily(t.Context(), f))
	return f, token{id, 0, f.TokenHash}
}

func testCreateFamily(t *testing.T, s store.Store) {
	ctx := t.Context()
	f, tk := newFamily(t, s, "f1", "c", "alice")
	got, err := s.GetFamily(ctx, "f1")
	must(t, err)
	if got.ID != f.ID || got.Subject != "alice" || string(got.Claims) != `{"a":1}` || got.AccessTTL != time.Minute ||
		!got.IdleExpiresAt.Equal(f.IdleExpiresAt) || got.Generation != 0 || !got.RevokedAt.IsZero() ||
		!bytes.Equal(got.TokenHash, tk.hash) || got.PreviousHash != nil || !got.RotatedAt.IsZero() {
		t.Fatalf("GetFamily = %+v", got)
	}
	got.TokenHash[0] ^= 1
	if again, _ := s.GetFamily(ctx, "f1"); !bytes.Equal(again.TokenHash, tk.hash) {
		t.Fatal("the store shares memory with its callers")
	}
	// A duplicate family ID writes nothing.
	wantErr(t, s.CreateFamily(ctx, store.Family{ID: "f1", ClientID: "c", Subject: "bob", TokenHash: hash()}), store.ErrExists)
	if again, _ := s.GetFamily(ctx, "f1"); again.Subject != "alice" || !bytes.Equal(again.TokenHash, tk.hash) {
		t.Fatalf("a refused CreateFamily changed the family: %+v", again)
	}
	_, err = s.GetFamily(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
}

func testListRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	newFamily(t, s, "a1", "app", "alice")
	newFamily(t, s, "a2", "app", "alice")
	newFamily(t, s, "b1", "app", "bob")
	newFamily(t, s, "o1", "other", "alice")
	list := func(f store.FamilyFilter) string {
		t.Helper()
		fams, err := s.ListFamilies(ctx, f)
		must(t, err)
		var ids []string
		for _, f := range fams {
			ids = append(ids, f.ID)
		}
		return fmt.Sprint(ids)
	}
	if got := list(store.FamilyFilter{ClientID: "app", Subject: "alice"}); got != "[a1 a2]" {
		t.Fatalf("by client and subject: %s", got)
	}
	if got := list(store.FamilyFilter{Subject: "alice"}); got != "[a1 a2 o1]" {
		t.Fatalf("by subject: %s", got)
	}
	must(t, s.RevokeFamily(ctx, "a1", t0.Add(time.Minute), "logout"))
	must(t, s.RevokeFamily(ctx, "a1", t0.Add(2*time.Minute), "admin"))
	f, _ := s.GetFamily(ctx, "a1")
	if !f.RevokedAt.Equal(t0.Add(time.Minute)) || f.RevokeReason != "logout" {
		t.Fatalf("second revoke changed the first: %+v", f)
	}
	wantErr(t, s.RevokeFamily(ctx, "nope", t0, "x"), store.ErrNotFound)
	if got := list(store.FamilyFilter{ClientID: "app", ActiveAt: t0.Add(time.Minute)}); got != "[a2 b1]" {
		t.Fatalf("active: %s", got)
	}
	if got := list(store.FamilyFilter{ActiveAt: t0.Add(2 * time.Hour)}); got != "[]" {
		t.Fatalf("active after idle expiry: %s", got)
	}
	n, err := s.RevokeFamilies(ctx, store.FamilyFilter{ClientID: "app"}, t0, "logout")
	must(t, err)
	if n != 2 {
		t.Fatalf("RevokeFamilies revoked %d, want 2 (a1 was already revoked)", n)
	}
	if got := list(store.FamilyFilter{ActiveAt: t0}); got != "[o1]" {
		t.Fatalf("after RevokeFamilies: %s", got)
	}
}

// req is a request to rotate old to a successor with hash next at at,
// with a grace of 30 s and an idle time of one hour.
func req(old token, next []byte, at time.Time) store.RotateRequest {
	return store.RotateRequest{FamilyID: old.family, Generation: old.gen, Old: old.hash, New: next,
		Now: at, Grace: 30 * time.Second, IdleExpiresAt: at.Add(time.Hour)}
}

func rotate(t *testing.T, s store.Store, old token, next []byte, at time.Time) (store.RotateResult, error) {
	t.Helper()
	return s.Rotate(t.Context(), req(old, next, at))
}

// wantFamily checks the family's generation and its current and previous
// token hashes.
func wantFamily(t *testing.T, s store.Store, id string, gen int64, cur, prev []byte) store.Family {
	t.Helper()
	f, err := s.GetFamily(t.Context(), id)
	must(t, err)
	if f.Generation != gen || !bytes.Equal(f.TokenHash, cur) || !bytes.Equal(f.PreviousHash, prev) {
		t.Fatalf("family %s at generation %d, current %x, previous %x; want %d, %x, %x", id, f.Generation, f.TokenHash, f.PreviousHash, gen, cur, prev)
	}
	return f
}

func testRotate(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, tk0 := newFamily(t, s, "f", "c", "alice")
	tk1 := tk0.succ(hash())
	at := t0.Add(10 * time.Minute)
	res, err := rotate(t, s, tk0, tk1.hash, at)
	must(t, err)
	if res.Outcome != store.Rotated || res.Family.Generation != 1 || !res.Family.LastUsedAt.Equal(at) || !res.Family.IdleExpiresAt.Equal(at.Add(time.Hour)) ||
		!res.Family.RotatedAt.Equal(at) || !bytes.Equal(res.Family.TokenHash, tk1.hash) || !bytes.Equal(res.Family.PreviousHash, tk0.hash) {
		t.Fatalf("Rotate = %v %+v", res.Outcome, res.Family)
	}
	if f := wantFamily(t, s, "f", 1, tk1.hash, tk0.hash); !f.RotatedAt.Equal(at) || !f.IdleExpiresAt.Equal(at.Add(time.Hour)) {
		t.Fatalf("family after rotation: %+v", f)
	}
	// The idle expiry never passes the absolute one.
	tk2 := tk1.succ(hash())
	r := req(tk1, tk2.hash, at)
	r.IdleExpiresAt = t0.Add(100 * time.Hour)
	res, err = s.Rotate(ctx, r)
	must(t, err)
	if !res.Family.IdleExpiresAt.Equal(t0.Add(24 * time.Hour)) {
		t.Fatalf("idle expiry %v past the absolute %v", res.Family.IdleExpiresAt, t0.Add(24*time.Hour))
	}
	// Tokens the family never held are not found, and change nothing: an
	// unknown family, a generation ahead, the current or the previous
	// generation with another hash.
	for name, bad := range map[string]token{
		"unknown family": {"nope", 2, tk2.hash}, "ahead": {"f", 3, hash()}, "negative": {"f", -1, hash()},
		"current, other hash": {"f", 2, hash()}, "previous, other hash": {"f", 1, hash()},
	} {
		_, err = rotate(t, s, bad, hash(), at)
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: %v, want store.ErrNotFound", name, err)
		}
	}
	// Another client's token is not found, and nothing changes.
	r = req(tk2, hash(), at)
	r.ClientID = "someone-else"
	_, err = s.Rotate(ctx, r)
	wantErr(t, err, store.ErrNotFound)
	wantFamily(t, s, "f", 2, tk2.hash, tk1.hash)
	r.ClientID = "c"
	res, err = s.Rotate(ctx, r)
	if err != nil || res.Outcome != store.Rotated {
		t.Fatalf("rotation by the owning client: %v %v", res.Outcome, err)
	}
}

func testRepeat(t *testing.T, s store.Store) {
	_, tk0 := newFamily(t, s, "f", "c", "alice")
	tk1 := tk0.succ(hash())
	_, err := rotate(t, s, tk0, tk1.hash, t0)
	must(t, err)
	res, err := rotate(t, s, tk0, tk1.hash, t0.Add(30*time.Second))
	must(t, err)
	if res.Outcome != store.Repeated || res.Family.Generation != 1 || !res.Family.RevokedAt.IsZero() || !bytes.Equal(res.Family.TokenHash, tk1.hash) {
		t.Fatalf("retry within grace = %v %+v", res.Outcome, res.Family)
	}
	wantFamily(t, s, "f", 1, tk1.hash, tk0.hash)
	// A retry that asks for another successor but also for tk1's (the
	// server derives one under each of its secrets) is Repeated too.
	r := req(tk0, hash(), t0.Add(20*time.Second))
	r.Alternates = [][]byte{hash(), tk1.hash}
	res, err = s.Rotate(t.Context(), r)
	if err != nil || res.Outcome != store.Repeated || !bytes.Equal(res.Family.TokenHash, tk1.hash) {
		t.Fatalf("retry finding its successor among the alternates = %v %+v, %v", res.Outcome, res.Family, err)
	}
	wantFamily(t, s, "f", 1, tk1.hash, tk0.hash)
	// Once the successor has itself been rotated, the old token is reuse
	// even within the grace window.
	_, err = rotate(t, s, tk1, hash(), t0.Add(31*time.Second))
	must(t, err)
	res, err = rotate(t, s, tk0, tk1.hash, t0.Add(29*time.Second))
	must(t, err)
	if res.Outcome != store.ReuseDetected {
		t.Fatalf("replay after the successor moved on = %v", res.Outcome)
	}
}

func testReuse(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, tk0 := newFamily(t, s, "f", "c", "alice")
	tk1 := tk0.succ(hash())
	_, err := rotate(t, s, tk0, tk1.hash, t0)
	must(t, err)
	res, err := rotate(t, s, tk0, tk1.hash, t0.Add(30*time.Second+time.Microsecond))
	must(t, err)
	if res.Outcome != store.ReuseDetected || res.Family.RevokeReason != "reuse" || !res.Family.RevokedAt.Equal(t0.Add(30*time.Second+time.Microsecond)) {
		t.Fatalf("reuse after grace = %v %+v", res.Outcome, res.Family)
	}
	f, _ := s.GetFamily(ctx, "f")
	if f.RevokeReason != "reuse" {
		t.Fatalf("family after reuse: %+v", f)
	}
	for _, tk := range []token{tk0, tk1} {
		_, err := rotate(t, s, tk, hash(), t0.Add(time.Minute))
		wantErr(t, err, store.ErrRevoked)
	}
	// A different successor within grace is reuse too (a forged retry).
	_, g0 := newFamily(t, s, "g", "c", "alice")
	_, err = rotate(t, s, g0, hash(), t0)
	must(t, err)
	res, err = rotate(t, s, g0, hash(), t0.Add(time.Second))
	must(t, err)
	if res.Outcome != store.ReuseDetected {
		t.Fatalf("other successor within grace = %v", res.Outcome)
	}
	// A token generations old is recognised by its generation alone, though
	// the family keeps only the last two hashes.
	_, h := newFamily(t, s, "h", "c", "alice")
	chain := []token{h}
	for i := range 5 {
		next := chain[i].succ(hash())
		res, err := rotate(t, s, chain[i], next.hash, t0.Add(time.Duration(i)*time.Minute))
		if err != nil || res.Outcome != store.Rotated {
			t.Fatalf("rotation %d: %v %v", i, res.Outcome, err)
		}
		chain = append(chain, next)
	}
	res, err = rotate(t, s, chain[2], chain[3].hash, t0.Add(5*time.Minute))
	if err != nil || res.Outcome != store.ReuseDetected || res.Family.RevokeReason != store.ReasonReuse {
		t.Fatalf("generation 2 of 5 presented again: %v %v %+v; want reuse", res.Outcome, err, res.Family)
	}
}

func testRotateEnded(t *testing.T, s store.Store) {
	_, tk := newFamily(t, s, "idle", "c", "alice")
	_, err := rotate(t, s, tk, hash(), t0.Add(time.Hour))
	wantErr(t, err, store.ErrExpired)
	_, tk = newFamily(t, s, "revoked", "c", "alice")
	must(t, s.RevokeFamily(t.Context(), "revoked", t0, "logout"))
	res, err := rotate(t, s, tk, hash(), t0.Add(time.Minute))
	wantErr(t, err, store.ErrRevoked)
	if res.Family.ID != "revoked" {
		t.Fatalf("result family %+v", res.Family)
	}
}

// 50 goroutines rotate the same token to the same successor: exactly one
// rotation, 49 repeats.
func testConcurrentSame(t *testing.T, s store.Store) {
	_, tk0 := newFamily(t, s, "f", "c", "alice")
	h1 := hash()
	counts := runConcurrently(t, 50, func(int) (store.RotateResult, error) { return rotate(t, s, tk0, h1, t0) })
	if counts[store.Rotated] != 1 || counts[store.Repeated] != 49 {
		t.Fatalf("outcomes %v; want 1 rotated, 49 repeated", counts)
	}
	wantFamily(t, s, "f", 1, h1, tk0.hash)
}

// Concurrent rotations to different successors: one wins, the rest are
// reuse and revoke the family.
func testConcurrentDifferent(t *testing.T, s store.Store) {
	_, tk0 := newFamily(t, s, "f", "c", "alice")
	counts := runConcurrently(t, 20, func(int) (store.RotateResult, error) { return rotate(t, s, tk0, hash(), t0) })
	if counts[store.Rotated] != 1 || counts[store.ReuseDetected]+counts[0] != 19 {
		t.Fatalf("outcomes %v; want 1 rotated, the rest reuse (or revoked)", counts)
	}
	f, _ := s.GetFamily(t.Context(), "f")
	if f.RevokeReason != "reuse" {
		t.Fatalf("family not revoked: %+v", f)
	}
}

func testConcurrentFamilies(t *testing.T, s store.Store) {
	hs := make([]token, 50)
	for i := range hs {
		_, hs[i] = newFamily(t, s, fmt.Sprint("f", i), "c", "alice")
	}
	counts := runConcurrently(t, 50, func(i int) (store.RotateResult, error) { return rotate(t, s, hs[i], hash(), t0) })
	if counts[store.Rotated] != 50 {
		t.Fatalf("outcomes %v; want 50 rotated", counts)
	}
}

// runConcurrently starts n calls at once and counts their outcomes; an
// ErrRevoked counts as outcome 0.
func runConcurrently(t *testing.T, n int, f func(i int) (store.RotateResult, error)) map[store.Outcome]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[store.Outcome]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := f(i)
			if err != nil && !errors.Is(err, store.ErrRevoked) {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[res.Outcome]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return counts
}

func testDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, live := newFamily(t, s, "live", "c", "alice")
	newFamily(t, s, "revoked", "c", "alice")
	must(t, s.RevokeFamily(ctx, "revoked", t0, "logout"))
	// A live family's old tokens are recognised after GC as before.
	next := live.succ(hash())
	_, err := rotate(t, s, live, next.hash, t0.Add(time.Minute))
	must(t, err)
	_, err = rotate(t, s, next, hash(), t0.Add(2*time.Minute))
	must(t, err)
	n, err := s.DeleteExpired(ctx, t0.Add(time.Second))
	must(t, err)
	if n != 1 {
		t.Fatalf("DeleteExpired = %d, want 1", n)
	}
	_, err = s.GetFamily(ctx, "revoked")
	wantErr(t, err, store.ErrNotFound)
	res, err := rotate(t, s, live, next.hash, t0.Add(time.Hour))
	must(t, err)
	if res.Outcome != store.ReuseDetected {
		t.Fatalf("reuse after GC = %v", res.Outcome)
	}
	// Past its idle expiry the live family goes too.
	n, err = s.DeleteExpired(ctx, t0.Add(48*time.Hour))
	must(t, err)
	if n != 1 {
		t.Fatalf("DeleteExpired = %d, want 1", n)
	}
	_, err = s.GetFamily(ctx, "live")
	wantErr(t, err, store.ErrNotFound)
	_, err = rotate(t, s, live, hash(), t0.Add(49*time.Hour))
	wantErr(t, err, store.ErrNotFound)
	must(t, s.Ping(context.Background()))
}

// A family ends at its expiry (it is no longer Active then) and at its
// revocation; DeleteExpired(before) deletes what ended strictly before,
// and expiries at exactly before, since the family is inactive then.
func testDeleteExpiredBoundaries(t *testing.T, s store.Store) {
	ctx := t.Context()
	idle := t0.Add(time.Hour) // newFamily's idle expiry
	newFamily(t, s, "idle", "c", "alice")
	newFamily(t, s, "revoked", "c", "alice")
	revokedAt := t0.Add(30 * time.Minute)
	must(t, s.RevokeFamily(ctx, "revoked", revokedAt, "logout"))
	for _, step := range []struct {
		before time.Time
		want   int
	}{
		{revokedAt, 0},
		{revokedAt.Add(time.Microsecond), 1},
		{idle.Add(-time.Microsecond), 0},
		{idle, 1}, // inactive from its expiry on
	} {
		n, err := s.DeleteExpired(ctx, step.before)
		must(t, err)
		if n != step.want {
			t.Fatalf("DeleteExpired(%v) = %d, want %d", step.before.Sub(t0), n, step.want)
		}
	}
}
