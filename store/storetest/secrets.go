package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// UpdatePasswordHash is a compare-and-set: ErrConflict (and no change)
// when the hash is not oldHash, ErrNotFound for an unknown user, and of two
// concurrent upgrades from the same hash exactly one wins.
func testUpdatePasswordHash(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, store.User{Name: "amy", PasswordHash: "$old", CreatedAt: t0}))
	must(t, s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "$old", CreatedAt: t0}))
	hashOf := func(name string) string {
		t.Helper()
		u, err := s.GetUser(ctx, name)
		must(t, err)
		return u.PasswordHash
	}
	wantErr(t, s.UpdatePasswordHash(ctx, "amy", "$wrong", "$new"), store.ErrConflict)
	if h := hashOf("amy"); h != "$old" {
		t.Fatalf("a refused update changed the hash to %q", h)
	}
	err := s.UpdatePasswordHash(ctx, "nobody", "$old", "$new")
	wantErr(t, err, store.ErrNotFound)
	if errors.Is(err, store.ErrConflict) {
		t.Fatalf("an unknown user is a conflict too: %v", err)
	}
	must(t, s.UpdatePasswordHash(ctx, "amy", "$old", "$new"))
	if h := hashOf("amy"); h != "$new" {
		t.Fatalf("hash %q after the update, want $new", h)
	}
	err = s.UpdatePasswordHash(ctx, "amy", "$old", "$newer")
	wantErr(t, err, store.ErrConflict)
	if errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a stale hash is reported as an unknown user: %v", err)
	}
	if h, u := hashOf("amy"), hashOf("bob"); h != "$new" || u != "$old" {
		t.Fatalf("hashes amy %q bob %q, want $new $old", h, u)
	}

	// 20 logins upgrade bob's hash at once: one wins, the others conflict.
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.UpdatePasswordHash(ctx, "bob", "$old", fmt.Sprint("$up", i))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner == -1:
			winner = i
		case err == nil:
			t.Fatalf("upgrades %d and %d both won", winner, i)
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("upgrade %d: %v, want ErrConflict", i, err)
		}
	}
	if winner == -1 {
		t.Fatal("no upgrade won")
	}
	if h := hashOf("bob"); h != fmt.Sprint("$up", winner) {
		t.Fatalf("hash %q, want the winner's $up%d", h, winner)
	}
}

// secretsState renders every key and secret value RewriteSecrets touches,
// and the key fields it must not.
func secretsState(t *testing.T, s store.Store, names ...string) string {
	t.Helper()
	ks, err := s.ListKeys(t.Context())
	must(t, err)
	var b bytes.Buffer
	for _, k := range ks {
		fmt.Fprintf(&b, "key %s %s %q %v %v %v\n", k.ID, k.Algorithm, k.Private, k.CreatedAt, k.RetiredAt, k.RevokedAt)
	}
	for _, name := range names {
		v, err := s.Secret(t.Context(), name, []byte("never stored"))
		must(t, err)
		fmt.Fprintf(&b, "secret %s %q\n", name, v)
	}
	return b.String()
}

// RewriteSecrets passes every key's Private and every secret's value
// through fn once and stores the results; if fn fails on any value,
// nothing changes.
func testRewriteSecrets(t *testing.T, s store.Store) {
	ctx := t.Context()
	calls := 0
	must(t, s.RewriteSecrets(ctx, func(string, string, []byte) ([]byte, error) { calls++; return nil, nil }))
	if calls != 0 {
		t.Fatalf("fn called %d times on an empty store", calls)
	}
	must(t, s.CreateKey(ctx, store.Key{ID: "k1", Algorithm: "EdDSA", Private: []byte("p1"), CreatedAt: t0}))
	must(t, s.CreateKey(ctx, store.Key{ID: "k2", Algorithm: "ES256", Private: []byte("p2"), CreatedAt: t0.Add(time.Second)}))
	must(t, s.RetireKey(ctx, "k1", t0.Add(time.Hour)))
	must(t, s.RevokeKey(ctx, "k2", t0.Add(2*time.Hour)))
	for _, name := range []string{"s1", "s2"} {
		_, err := s.Secret(ctx, name, []byte("v"+name[1:]))
		must(t, err)
	}
	before := secretsState(t, s, "s1", "s2")

	// fn fails on the 1st, 2nd, ... value, after scribbling on its input:
	// nothing changes.
	errBoom := errors.New("boom")
	for fail := 1; fail <= 4; fail++ {
		n := 0
		err := s.RewriteSecrets(ctx, func(_, _ string, v []byte) ([]byte, error) {
			n++
			if len(v) > 0 {
				v[0] = '!'
			}
			if n == fail {
				return nil, errBoom
			}
			return append([]byte("sealed:"), v...), nil
		})
		wantErr(t, err, errBoom)
		if after := secretsState(t, s, "s1", "s2"); after != before {
			t.Fatalf("fn failing on value %d changed\n%s\ninto\n%s", fail, before, after)
		}
	}

	// A round trip: seal, then unseal.
	var seen []string
	must(t, s.RewriteSecrets(ctx, func(kind, name string, v []byte) ([]byte, error) {
		seen = append(seen, fmt.Sprintf("%s/%s=%s", kind, name, v))
		return append([]byte("sealed:"), v...), nil
	}))
	slices.Sort(seen)
	if got := fmt.Sprint(seen); got != "[key/k1=p1 key/k2=p2 secret/s1=v1 secret/s2=v2]" {
		t.Fatalf("fn saw %s", got)
	}
	sealed := secretsState(t, s, "s1", "s2")
	if want := strings.NewReplacer(`"p`, `"sealed:p`, `"v`, `"sealed:v`).Replace(before); sealed != want {
		t.Fatalf("after sealing:\n%s\nwant\n%s", sealed, want)
	}
	must(t, s.RewriteSecrets(ctx, func(_, _ string, v []byte) ([]byte, error) {
		out, ok := bytes.CutPrefix(v, []byte("sealed:"))
		if !ok {
			return nil, fmt.Errorf("not sealed: %q", v)
		}
		return out, nil
	}))
	if after := secretsState(t, s, "s1", "s2"); after != before {
		t.Fatalf("after the round trip:\n%s\nwant\n%s", after, before)
	}
}
