package sealed_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
	"github.com/tokend/tokend/store/storetest"
)

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// rawKey returns 32 key bytes made of fill; keyOf the operator key.
func rawKey(fill byte) []byte { return bytes.Repeat([]byte{fill}, sealed.KeySize) }

func keyOf(t testing.TB, fill byte) *sealed.Key {
	t.Helper()
	k, err := sealed.NewKey(rawKey(fill))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// dump returns every value in st as stored, by "kind/name".
func dump(t testing.TB, st store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := st.RewriteSecrets(t.Context(), func(kind, name string, v []byte) ([]byte, error) {
		out[kind+"/"+name] = string(v)
		return v, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// setRaw replaces the stored value of one record of st.
func setRaw(t testing.TB, st store.Store, kind, name string, v []byte) {
	t.Helper()
	err := st.RewriteSecrets(t.Context(), func(k, n string, old []byte) ([]byte, error) {
		if k == kind && n == name {
			return v, nil
		}
		return old, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fill stores, through st, two signing keys and a secret, and returns
// their values by "kind/name".
func fill(t testing.TB, st store.Store) map[string]string {
	t.Helper()
	ctx := t.Context()
	want := map[string]string{}
	for i, id := range []string{"k1", "k2"} {
		priv := []byte("\x30private key " + id)
		if err := st.CreateKey(ctx, store.Key{ID: id, Algorithm: "EdDSA", Private: priv, CreatedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		want[store.KindKey+"/"+id] = string(priv)
	}
	sec := bytes.Repeat([]byte{0xA5}, 32)
	if _, err := st.Secret(ctx, "refresh-successor", sec); err != nil {
		t.Fatal(err)
	}
	want[store.KindSecret+"/refresh-successor"] = string(sec)
	return want
}

// read returns every value as st (a wrapper) opens it.
func read(t testing.TB, st store.Store) (map[string]string, error) {
	t.Helper()
	ks, err := st.ListKeys(t.Context())
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range ks {
		out[store.KindKey+"/"+k.ID] = string(k.Private)
	}
	v, err := st.Secret(t.Context(), "refresh-successor", []byte("not stored: the secret exists"))
	if err != nil {
		return nil, err
	}
	out[store.KindSecret+"/refresh-successor"] = string(v)
	return out, nil
}

// sealedUnder reports whether v is a sealed value naming key.
func sealedUnder(v string, key *sealed.Key) bool {
	id, _ := hex.DecodeString(key.ID())
	return strings.HasPrefix(v, "tks1"+string(id))
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestConformance(t *testing.T) {
	k := keyOf(t, 1)
	rings := map[string]sealed.Keyring{
		"Sealed":  {Current: k},
		"Off":     {},
		"Opening": {Old: []*sealed.Key{k}},
	}
	for name, ring := range rings {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(*testing.T) store.Store { return sealed.Wrap(memory.New(), ring) })
		})
	}
}

// What goes in comes out; what is stored is sealed under the key and holds
// no plain byte of the value; each sealing has its own nonce.
func TestRoundTrip(t *testing.T) {
	k := keyOf(t, 1)
	inner := memory.New()
	st := sealed.Wrap(inner, sealed.Keyring{Current: k})
	want := fill(t, st)
	got, err := read(t, st)
	if err != nil || !equalMaps(got, want) {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
	for rec, v := range dump(t, inner) {
		if !sealedUnder(v, k) || strings.Contains(v, want[rec]) || strings.Contains(v, want[rec][1:9]) {
			t.Errorf("%s is stored as %x: not sealed under %s", rec, v, k.ID())
		}
	}
	// The same value sealed twice differs (a fresh nonce), and both open.
	priv := []byte("same")
	for _, id := range []string{"a", "b"} {
		if err := st.CreateKey(t.Context(), store.Key{ID: id, Private: priv}); err != nil {
			t.Fatal(err)
		}
	}
	raw := dump(t, inner)
	if raw["key/a"][8:] == raw["key/b"][8:] {
		t.Error("two sealings of one value are identical")
	}
	// RewriteSecrets through the wrapper sees values in clear and seals
	// what it returns.
	err = st.RewriteSecrets(t.Context(), func(kind, name string, v []byte) ([]byte, error) {
		if want := want[kind+"/"+name]; want != "" && string(v) != want {
			t.Errorf("RewriteSecrets passed %s/%s = %q, want %q", kind, name, v, want)
		}
		return append(v, '!'), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = read(t, st)
	if got["secret/refresh-successor"] != want["secret/refresh-successor"]+"!" {
		t.Errorf("after RewriteSecrets the secret is %q", got["secret/refresh-successor"])
	}
	for rec, v := range dump(t, inner) {
		if !sealedUnder(v, k) {
			t.Errorf("after RewriteSecrets %s is not sealed", rec)
		}
	}
}

// A sealed value opens only as the value of the record it was sealed for,
// unaltered.
func TestBoundToRecord(t *testing.T) {
	k := keyOf(t, 1)
	cases := []struct {
		name   string
		change func(raw map[string]string) (kind, rec string, v []byte)
		want   error
	}{
		{"key moved to another key", func(raw map[string]string) (string, string, []byte) {
			return store.KindKey, "k2", []byte(raw["key/k1"])
		}, sealed.ErrTampered},
		{"secret moved to a key", func(raw map[string]string) (string, string, []byte) {
			return store.KindKey, "k1", []byte(raw["secret/refresh-successor"])
		}, sealed.ErrTampered},
		{"key moved to the secret", func(raw map[string]string) (string, string, []byte) {
			return store.KindSecret, "refresh-successor", []byte(raw["key/k2"])
		}, sealed.ErrTampered},
		{"one bit flipped", func(raw map[string]string) (string, string, []byte) {
			v := []byte(raw["key/k1"])
			v[len(v)-20] ^= 1
			return store.KindKey, "k1", v
		}, sealed.ErrTampered},
		{"truncated", func(raw map[string]string) (string, string, []byte) {
			v := []byte(raw["key/k1"])
			return store.KindKey, "k1", v[:len(v)-1]
		}, sealed.ErrTampered},
		{"key ID changed", func(raw map[string]string) (string, string, []byte) {
			v := []byte(raw["key/k1"])
			v[5] ^= 1
			return store.KindKey, "k1", v
		}, sealed.ErrUnknownKey},
		{"replaced by a value in clear", func(map[string]string) (string, string, []byte) {
			return store.KindKey, "k2", []byte("\x30planted key")
		}, sealed.ErrClear},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner := memory.New()
			st := sealed.Wrap(inner, sealed.Keyring{Current: k})
			fill(t, st)
			kind, rec, v := tc.change(dump(t, inner))
			setRaw(t, inner, kind, rec, v)
			_, err := read(t, st)
			if !errors.Is(err, tc.want) {
				t.Fatalf("read: %v; want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", rec)) {
				t.Errorf("%q does not name the record %q", err, rec)
			}
		})
	}
}

// A signing key's value moved to a secret of the same name does not open:
// the kind is bound too, not only the name.
func TestBoundToKind(t *testing.T) {
	k := keyOf(t, 1)
	inner := memory.New()
	st := sealed.Wrap(inner, sealed.Keyring{Current: k})
	fill(t, st)
	if _, err := st.Secret(t.Context(), "k1", []byte("a secret named like a key")); err != nil {
		t.Fatal(err)
	}
	setRaw(t, inner, store.KindSecret, "k1", []byte(dump(t, inner)["key/k1"]))
	if v, err := st.Secret(t.Context(), "k1", nil); !errors.Is(err, sealed.ErrTampered) {
		t.Fatalf("secret k1 holding key k1's value: %q, %v", v, err)
	}
}

func TestWrongKey(t *testing.T) {
	k1, k2 := keyOf(t, 1), keyOf(t, 2)
	inner := memory.New()
	fill(t, sealed.Wrap(inner, sealed.Keyring{Current: k1}))
	cases := []struct {
		ring   sealed.Keyring
		phrase string
	}{
		{sealed.Keyring{Current: k2}, "which is not in the keyring (" + k2.ID() + ")"},
		{sealed.Keyring{}, "no operator key is configured"},
		{sealed.Keyring{Old: []*sealed.Key{k2}}, "which is not in the keyring (" + k2.ID() + ")"},
	}
	for _, tc := range cases {
		st := sealed.Wrap(inner, tc.ring)
		if _, err := st.ListKeys(t.Context()); !errors.Is(err, sealed.ErrUnknownKey) ||
			!strings.Contains(err.Error(), k1.ID()) || !strings.Contains(err.Error(), tc.phrase) {
			t.Errorf("ring %v: ListKeys: %v", tc.ring.IDs(), err)
		}
		if _, err := st.Secret(t.Context(), "refresh-successor", nil); !errors.Is(err, sealed.ErrUnknownKey) {
			t.Errorf("ring %v: Secret: %v", tc.ring.IDs(), err)
		}
	}
}

// During a rotation the ring opens values under the old key and the new
// one, and seals new values under the new one.
func TestKeyringOldAndNew(t *testing.T) {
	oldK, newK := keyOf(t, 1), keyOf(t, 2)
	inner := memory.New()
	want := fill(t, sealed.Wrap(inner, sealed.Keyring{Current: oldK}))
	both := sealed.Wrap(inner, sealed.Keyring{Current: newK, Old: []*sealed.Key{oldK}})
	if got, err := read(t, both); err != nil || !equalMaps(got, want) {
		t.Fatalf("new+old ring read %q, %v", got, err)
	}
	if err := both.CreateKey(t.Context(), store.Key{ID: "k3", Private: []byte("third")}); err != nil {
		t.Fatal(err)
	}
	raw := dump(t, inner)
	if !sealedUnder(raw["key/k3"], newK) || !sealedUnder(raw["key/k1"], oldK) {
		t.Fatalf("k3 not sealed under the new key, or k1 resealed: %x, %x", raw["key/k3"][:8], raw["key/k1"][:8])
	}
	// The new key alone opens k3, not k1.
	newOnly := sealed.Wrap(inner, sealed.Keyring{Current: newK})
	if _, err := newOnly.ListKeys(t.Context()); !errors.Is(err, sealed.ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("new key alone: %v", err)
	}
}

// A store in clear is refused under a key, read as it is without one, and
// read (clear and sealed values alike) while encryption is being turned
// off.
func TestClearStore(t *testing.T) {
	k := keyOf(t, 1)
	inner := memory.New()
	want := fill(t, inner)
	withKey := sealed.Wrap(inner, sealed.Keyring{Current: k})
	if _, err := withKey.ListKeys(t.Context()); !errors.Is(err, sealed.ErrClear) || !strings.Contains(err.Error(), "tokend encryption seal") {
		t.Fatalf("ListKeys of a store in clear with a key: %v", err)
	}
	if _, err := withKey.Secret(t.Context(), "refresh-successor", nil); !errors.Is(err, sealed.ErrClear) {
		t.Fatalf("Secret in clear with a key: %v", err)
	}
	if got, err := read(t, sealed.Wrap(inner, sealed.Keyring{})); err != nil || !equalMaps(got, want) {
		t.Fatalf("without a key: %q, %v", got, err)
	}
	// Encryption being turned off: a key sealed under k, the rest in clear.
	if err := withKey.CreateKey(t.Context(), store.Key{ID: "k3", Private: []byte("third")}); err != nil {
		t.Fatal(err)
	}
	want["key/k3"] = "third"
	opening := sealed.Wrap(inner, sealed.Keyring{Old: []*sealed.Key{k}})
	if got, err := read(t, opening); err != nil || !equalMaps(got, want) {
		t.Fatalf("with the key as old key: %q, %v", got, err)
	}
	if err := opening.CreateKey(t.Context(), store.Key{ID: "k4", Private: []byte("fourth")}); err != nil {
		t.Fatal(err)
	}
	if raw := dump(t, inner); raw["key/k4"] != "fourth" {
		t.Fatalf("without a current key, k4 is stored as %q, want it in clear", raw["key/k4"])
	}
}

func TestWrapTwice(t *testing.T) {
	k1, k2 := keyOf(t, 1), keyOf(t, 2)
	inner := memory.New()
	st := sealed.Wrap(sealed.Wrap(inner, sealed.Keyring{Current: k1}), sealed.Keyring{Current: k2})
	fill(t, st)
	for rec, v := range dump(t, inner) {
		if !sealedUnder(v, k2) {
			t.Errorf("%s: not sealed once under the outer ring's key", rec)
		}
	}
	if got := st.Keyring().IDs(); len(got) != 1 || got[0] != k2.ID() {
		t.Errorf("Keyring().IDs() = %v", got)
	}
}

// Reads and writes from many goroutines share one Key (run with -race).
func TestConcurrent(t *testing.T) {
	st := sealed.Wrap(memory.New(), sealed.Keyring{Current: keyOf(t, 1)})
	want := fill(t, st)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := st.CreateKey(t.Context(), store.Key{ID: fmt.Sprint("c", i), Private: []byte("p")}); err != nil {
				t.Error(err)
			}
			for range 20 {
				v, err := st.Secret(t.Context(), "refresh-successor", []byte("other"))
				if err != nil || string(v) != want["secret/refresh-successor"] {
					t.Errorf("Secret = %x, %v", v, err)
					return
				}
				if _, err := st.ListKeys(t.Context()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// ListKeys through the wrapper against the bare memory store: the cost of
// opening three keys.
func BenchmarkListKeys(b *testing.B) {
	for _, bc := range []struct {
		name string
		wrap func(store.Store) store.Store
	}{
		{"memory", func(st store.Store) store.Store { return st }},
		{"sealed", func(st store.Store) store.Store {
			return sealed.Wrap(st, sealed.Keyring{Current: keyOf(b, 1)})
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := bc.wrap(memory.New())
			for i := range 3 {
				priv := bytes.Repeat([]byte{byte(i)}, 48) // an Ed25519 PKCS #8 key's size
				if err := st.CreateKey(context.Background(), store.Key{ID: fmt.Sprint(i), Private: priv}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.ListKeys(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
