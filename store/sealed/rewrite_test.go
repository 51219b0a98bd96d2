package sealed_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
)

// spy is a memory store that counts the values its RewriteSecrets hands
// to fn and, if failCommit is set, fails once fn has rewritten the last of
// n values, as a store whose commit fails would.
type spy struct {
	*memory.Store
	calls      int
	n          int
	failCommit error
}

func (s *spy) RewriteSecrets(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, error)) error {
	s.calls = 0
	return s.Store.RewriteSecrets(ctx, func(kind, name string, v []byte) ([]byte, error) {
		s.calls++
		out, err := fn(kind, name, v)
		if err == nil && s.failCommit != nil && s.calls == s.n {
			return nil, s.failCommit
		}
		return out, err
	})
}

func records(recs []sealed.Record) string {
	var out []string
	for _, r := range recs {
		id := r.KeyID
		if id == "" {
			id = "clear"
		}
		out = append(out, fmt.Sprintf("%s/%s:%s", r.Kind, r.Name, id))
	}
	return fmt.Sprint(out)
}

func allUnder(t *testing.T, raw map[string]string, k *sealed.Key) {
	t.Helper()
	for rec, v := range raw {
		if !sealedUnder(v, k) {
			t.Errorf("%s is not sealed under %s", rec, k.ID())
		}
	}
}

// Seal a store in clear, seal it again (nothing moves), rotate to a new
// key, unseal it: it ends as it began, and each step reports what it found.
func TestSealRotateUnseal(t *testing.T) {
	ctx := t.Context()
	k1, k2 := keyOf(t, 1), keyOf(t, 2)
	inner := memory.New()
	want := fill(t, inner)
	if err := inner.CreateClient(ctx, store.Client{ID: "web", SecretHash: []byte("hash")}); err != nil {
		t.Fatal(err)
	}
	clearRaw := dump(t, inner)

	recs, err := sealed.Seal(ctx, inner, sealed.Keyring{Current: k1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := records(recs), "[key/k1:clear key/k2:clear secret/refresh-successor:clear]"; got != want {
		t.Errorf("Seal found %s, want %s", got, want)
	}
	sealedRaw := dump(t, inner)
	allUnder(t, sealedRaw, k1)
	if got, err := read(t, sealed.Wrap(inner, sealed.Keyring{Current: k1})); err != nil || !equalMaps(got, want) {
		t.Fatalf("after Seal: %q, %v", got, err)
	}

	recs, err = sealed.Seal(ctx, inner, sealed.Keyring{Current: k1})
	if err != nil || !equalMaps(dump(t, inner), sealedRaw) {
		t.Fatalf("a second Seal changed the store (%v)", err)
	}
	if got, want := records(recs), fmt.Sprintf("[key/k1:%[1]s key/k2:%[1]s secret/refresh-successor:%[1]s]", k1.ID()); got != want {
		t.Errorf("second Seal found %s, want %s", got, want)
	}

	// A rotation; and Inspect, which changes nothing, reports it.
	if _, err := sealed.Seal(ctx, inner, sealed.Keyring{Current: k2, Old: []*sealed.Key{k1}}); err != nil {
		t.Fatal(err)
	}
	rotated := dump(t, inner)
	allUnder(t, rotated, k2)
	recs, err = sealed.Inspect(ctx, inner)
	if err != nil || !equalMaps(dump(t, inner), rotated) {
		t.Fatalf("Inspect changed the store (%v)", err)
	}
	if got, want := records(recs), fmt.Sprintf("[key/k1:%[1]s key/k2:%[1]s secret/refresh-successor:%[1]s]", k2.ID()); got != want {
		t.Errorf("Inspect after the rotation: %s, want %s", got, want)
	}
	if got, err := read(t, sealed.Wrap(inner, sealed.Keyring{Current: k2})); err != nil || !equalMaps(got, want) {
		t.Fatalf("after the rotation, under the new key alone: %q, %v", got, err)
	}

	if _, err := sealed.Unseal(ctx, inner, sealed.Keyring{Old: []*sealed.Key{k2}}); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, inner); !equalMaps(got, clearRaw) {
		t.Fatalf("after Unseal the store holds %q, want %q", got, clearRaw)
	}
	if c, err := inner.GetClient(ctx, "web"); err != nil || string(c.SecretHash) != "hash" {
		t.Fatalf("client after the round: %+v, %v", c, err)
	}
}

// A store partly sealed (under an old key) and partly in clear is sealed
// whole under the current key.
func TestSealMixed(t *testing.T) {
	k1, k2 := keyOf(t, 1), keyOf(t, 2)
	inner := memory.New()
	want := fill(t, inner)
	if err := sealed.Wrap(inner, sealed.Keyring{Current: k1}).CreateKey(t.Context(), store.Key{ID: "k3", Private: []byte("third")}); err != nil {
		t.Fatal(err)
	}
	want["key/k3"] = "third"
	recs, err := sealed.Seal(t.Context(), inner, sealed.Keyring{Current: k2, Old: []*sealed.Key{k1}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := records(recs), "[key/k1:clear key/k2:clear key/k3:"+k1.ID()+" secret/refresh-successor:clear]"; got != want {
		t.Errorf("Seal found %s, want %s", got, want)
	}
	allUnder(t, dump(t, inner), k2)
	if got, err := read(t, sealed.Wrap(inner, sealed.Keyring{Current: k2})); err != nil || !equalMaps(got, want) {
		t.Fatalf("after Seal: %q, %v", got, err)
	}
}

// Seal, rotate and unseal fail as a whole: the last value fails (after
// the others were rewritten), or the store fails to commit, and the store
// is as it was.
func TestRewriteAtomic(t *testing.T) {
	k1, k2, stranger := keyOf(t, 1), keyOf(t, 2), keyOf(t, 3)
	clearStore := func(t *testing.T, s *spy) { fill(t, s.Store) }
	sealedUnderK1 := func(t *testing.T, s *spy) { fill(t, sealed.Wrap(s.Store, sealed.Keyring{Current: k1})) }
	// The secret is the last value RewriteSecrets hands over.
	lastUnderStranger := func(base func(*testing.T, *spy)) func(*testing.T, *spy) {
		return func(t *testing.T, s *spy) {
			base(t, s)
			other := memory.New()
			if _, err := sealed.Wrap(other, sealed.Keyring{Current: stranger}).Secret(t.Context(), "refresh-successor", []byte("z")); err != nil {
				t.Fatal(err)
			}
			setRaw(t, s.Store, store.KindSecret, "refresh-successor", []byte(dump(t, other)["secret/refresh-successor"]))
		}
	}
	lastTampered := func(t *testing.T, s *spy) {
		sealedUnderK1(t, s)
		v := []byte(dump(t, s.Store)["secret/refresh-successor"])
		v[len(v)-1] ^= 1
		setRaw(t, s.Store, store.KindSecret, "refresh-successor", v)
	}
	seal := func(st store.Store) error {
		_, err := sealed.Seal(t.Context(), st, sealed.Keyring{Current: k1})
		return err
	}
	rotate := func(st store.Store) error {
		_, err := sealed.Seal(t.Context(), st, sealed.Keyring{Current: k2, Old: []*sealed.Key{k1}})
		return err
	}
	unseal := func(st store.Store) error {
		_, err := sealed.Unseal(t.Context(), st, sealed.Keyring{Old: []*sealed.Key{k1}})
		return err
	}
	cases := []struct {
		name       string
		setup      func(*testing.T, *spy)
		op         func(store.Store) error
		failCommit error
		want       error
	}{
		{"seal, last value under a stranger", lastUnderStranger(clearStore), seal, nil, sealed.ErrUnknownKey},
		{"rotate, last value under a stranger", lastUnderStranger(sealedUnderK1), rotate, nil, sealed.ErrUnknownKey},
		{"unseal, last value under a stranger", lastUnderStranger(sealedUnderK1), unseal, nil, sealed.ErrUnknownKey},
		{"rotate, last value tampered", lastTampered, rotate, nil, sealed.ErrTampered},
		{"unseal, last value tampered", lastTampered, unseal, nil, sealed.ErrTampered},
		{"seal, commit fails", clearStore, seal, store.ErrUnavailable, store.ErrUnavailable},
		{"rotate, commit fails", sealedUnderK1, rotate, store.ErrUnavailable, store.ErrUnavailable},
		{"unseal, commit fails", sealedUnderK1, unseal, store.ErrUnavailable, store.ErrUnavailable},
		{"seal without a current key", clearStore, func(st store.Store) error {
			_, err := sealed.Seal(t.Context(), st, sealed.Keyring{Old: []*sealed.Key{k1}})
			return err
		}, nil, sealed.ErrNoKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &spy{Store: memory.New()}
			tc.setup(t, s)
			before := dump(t, s.Store)
			s.n, s.failCommit = len(before), tc.failCommit
			err := tc.op(s)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want != sealed.ErrNoKey && s.calls != len(before) {
				t.Errorf("failed after %d of %d values; want the last", s.calls, len(before))
			}
			if after := dump(t, s.Store); !equalMaps(after, before) {
				t.Errorf("the store changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// Seal and Unseal given a wrapper act on the store under it.
func TestRewriteUnwraps(t *testing.T) {
	k := keyOf(t, 1)
	inner := memory.New()
	want := fill(t, inner)
	w := sealed.Wrap(inner, sealed.Keyring{Current: k})
	if _, err := sealed.Seal(t.Context(), w, sealed.Keyring{Current: k}); err != nil {
		t.Fatal(err)
	}
	allUnder(t, dump(t, inner), k)
	recs, err := sealed.Unseal(t.Context(), w, sealed.Keyring{Current: k})
	if err != nil || len(recs) != 3 || slices.ContainsFunc(recs, func(r sealed.Record) bool { return r.KeyID != k.ID() }) {
		t.Fatalf("Unseal: %v, %v", records(recs), err)
	}
	if got := dump(t, inner); !equalMaps(got, want) {
		t.Fatalf("after Unseal: %q", got)
	}
}
