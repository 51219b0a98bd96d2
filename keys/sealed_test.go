package keys_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
)

// A process whose store is sealed under it (it holds no operator key)
// keeps signing with the keys it holds, and still sees every key's state:
// a key revoked afterwards is withdrawn at once, and a key it never held
// cannot sign here, loudly (store.ErrUnreadable).
func TestSealedUnderARunningProcess(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	running := sealed.Wrap(inner, sealed.Keyring{}) // no operator key, values in clear
	ks, err := keys.Load(ctx, running, keys.EdDSA, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	first := ks.ActiveKeyID()
	if _, err := keys.Rotate(ctx, running, keys.EdDSA, t0, time.Minute); err != nil { // published, signs in a minute
		t.Fatal(err)
	}
	if err := ks.Reload(ctx, t0); err != nil {
		t.Fatal(err)
	}
	opKey, err := sealed.NewKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealed.Seal(ctx, inner, sealed.Keyring{Current: opKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := running.ListKeys(ctx); !errors.Is(err, store.ErrUnreadable) {
		t.Fatalf("ListKeys of a sealed store without its key: %v, want ErrUnreadable", err)
	}
	// The second key's time comes: it signs, from what this process held.
	later := t0.Add(2 * time.Minute)
	if err := ks.Reload(ctx, later); err != nil {
		t.Fatalf("reload after sealing: %v", err)
	}
	second := ks.ActiveKeyID()
	if second == first {
		t.Fatal("the second key does not sign after its NotBefore")
	}
	if _, err := ks.Sign(map[string]any{"sub": "alice"}); err != nil {
		t.Fatal(err)
	}
	// Revoked by another process that holds the operator key: withdrawn
	// here at the next reload, and the key that replaces it was never held.
	other := sealed.Wrap(inner, sealed.Keyring{Current: opKey})
	if _, err := keys.Revoke(ctx, other, second, "", later); err != nil {
		t.Fatal(err)
	}
	if err := ks.Check(ctx, second, later); !errors.Is(err, keys.ErrRevoked) {
		t.Fatalf("Check of the revoked key: %v, want ErrRevoked", err)
	}
	if ks.Published(second) {
		t.Fatal("the revoked key is still published")
	}
	if _, err := ks.Sign(map[string]any{"sub": "alice"}); !errors.Is(err, store.ErrUnreadable) {
		t.Fatalf("Sign with a key this process never held: %v, want ErrUnreadable", err)
	}
}
