package storecopy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
	"github.com/tokend/tokend/store/storecopy"
)

func operatorKey(t *testing.T) *sealed.Key {
	t.Helper()
	raw := make([]byte, sealed.KeySize)
	_, _ = rand.Read(raw)
	k, err := sealed.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Copy given sealed wrappers copies the sealed bytes, never opened: the
// target holds the source's bytes, and only the operator key opens them.
func TestSealedStaysSealed(t *testing.T) {
	ctx := t.Context()
	key := operatorKey(t)
	rawFrom, rawTo := memory.New(), memory.New()
	from := sealed.Wrap(store.WithTimeout(rawFrom, time.Second), sealed.Keyring{Current: key})
	private := []byte("PKCS #8 of a signing key")
	if err := from.CreateKey(ctx, store.Key{ID: "k1", Algorithm: "EdDSA", Private: private, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := from.Secret(ctx, "refresh", []byte("ring value")); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.Capability[store.Importer](from); !ok {
		t.Fatal("store.Capability finds no Importer under sealed.Wrap and WithTimeout")
	}
	// The target wrapped with another operator key: Copy must not seal
	// or open on either side.
	to := sealed.Wrap(rawTo, sealed.Keyring{Current: operatorKey(t)})
	if _, err := storecopy.Copy(ctx, from, to, nil); err != nil {
		t.Fatal(err)
	}
	stored, _ := rawFrom.ListKeys(ctx)
	copied, _ := rawTo.ListKeys(ctx)
	if len(copied) != 1 || !bytes.Equal(copied[0].Private, stored[0].Private) || bytes.Contains(copied[0].Private, private) {
		t.Fatalf("copied key bytes differ from the stored ones, or are in clear")
	}
	if _, err := sealed.Wrap(rawTo, sealed.Keyring{}).ListKeys(ctx); !errors.Is(err, store.ErrUnreadable) {
		t.Fatalf("copied key read without the operator key: %v, want ErrUnreadable", err)
	}
	keys, err := sealed.Wrap(rawTo, sealed.Keyring{Current: key}).ListKeys(ctx)
	if err != nil || !bytes.Equal(keys[0].Private, private) {
		t.Fatalf("copied key under the operator key: %v", err)
	}
	v, err := sealed.Wrap(rawTo, sealed.Keyring{Current: key}).Secret(ctx, "refresh", []byte("other"))
	if err != nil || string(v) != "ring value" {
		t.Fatalf("copied secret under the operator key: %q, %v", v, err)
	}
}

// A store without store.Importer anywhere in its chain is refused.
func TestNoImporter(t *testing.T) {
	type bare struct{ store.Store }
	_, err := storecopy.Copy(t.Context(), bare{memory.New()}, memory.New(), nil)
	if !errors.Is(err, storecopy.ErrNoImporter) {
		t.Fatalf("err = %v, want ErrNoImporter", err)
	}
}

// Check says which kinds differ and how, never a value.
func TestCheckNamesKinds(t *testing.T) {
	ctx := t.Context()
	from, to := memory.New(), memory.New()
	at := time.Now()
	secret := []byte("a secret value")
	if _, err := from.Secret(ctx, "refresh", secret); err != nil {
		t.Fatal(err)
	}
	if _, err := to.Secret(ctx, "refresh", []byte("another value")); err != nil {
		t.Fatal(err)
	}
	if err := to.CreateUser(ctx, store.User{Name: "only-here", PasswordHash: "$h", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	counts, err := storecopy.Check(ctx, from, to, nil)
	if !errors.Is(err, storecopy.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	want := "storecopy: the stores differ: secrets: 0 missing from the target, 1 differing, 0 only in the target; users: 0 missing from the target, 0 differing, 1 only in the target"
	if err.Error() != want {
		t.Fatalf("err = %q\nwant %q", err, want)
	}
	for _, c := range counts {
		if c.Differs() != (c.Kind == storecopy.KindSecrets || c.Kind == storecopy.KindUsers) {
			t.Errorf("%s: %+v", c.Kind, c)
		}
	}
	// Copy refuses the conflicting secret and writes nothing.
	if err := from.CreateClient(ctx, store.Client{ID: "app", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := storecopy.Copy(ctx, from, to, nil); !errors.Is(err, storecopy.ErrConflict) {
		t.Fatalf("Copy: %v, want ErrConflict", err)
	}
	if _, err := to.GetClient(ctx, "app"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused Copy wrote: %v", err)
	}
}

func TestSame(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6_007_000, time.UTC)
	a := store.Family{ID: "f", CreatedAt: at, Audience: nil, TokenHash: []byte{1}}
	b := a
	b.CreatedAt = at.In(time.FixedZone("x", 3600)).Add(999) // under a microsecond, another zone
	b.Audience = []string{}
	if !storecopy.Same(a, b) {
		t.Fatal("Same tells apart encodings of one record")
	}
	for name, change := range map[string]func(*store.Family){
		"time":       func(f *store.Family) { f.CreatedAt = f.CreatedAt.Add(time.Microsecond) },
		"hash":       func(f *store.Family) { f.TokenHash = []byte{2} },
		"generation": func(f *store.Family) { f.Generation++ },
		"audience":   func(f *store.Family) { f.Audience = []string{"x"} },
		"ttl":        func(f *store.Family) { f.AccessTTL = time.Second },
	} {
		c := a
		change(&c)
		if storecopy.Same(a, c) {
			t.Errorf("Same misses a change of %s", name)
		}
	}
}

// A target that holds live records of its own (a server ran on it and
// made its key) is refused, though nothing conflicts: Copy writes nothing.
func TestCopyRefusesTargetsOwnRecords(t *testing.T) {
	ctx := t.Context()
	from, to := memory.New(), memory.New()
	at := time.Now()
	if err := from.CreateClient(ctx, store.Client{ID: "app", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := to.CreateKey(ctx, store.Key{ID: "its-own", Algorithm: "EdDSA", Private: []byte("k"), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	counts, err := storecopy.Copy(ctx, from, to, nil)
	if !errors.Is(err, storecopy.ErrConflict) || !strings.Contains(err.Error(), "keys: 0 missing from the target, 0 differing, 1 only in the target") {
		t.Fatalf("Copy onto a store with its own key: %v", err)
	}
	for _, c := range counts {
		if c.Copied != 0 {
			t.Errorf("%s: %+v, want nothing copied", c.Kind, c)
		}
	}
	if _, err := to.GetClient(ctx, "app"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused Copy wrote: %v", err)
	}
}

// failingUsers is a memory store whose CreateUser fails.
type failingUsers struct{ *memory.Store }

var errDown = errors.New("the database went away")

func (failingUsers) CreateUser(context.Context, store.User) error { return errDown }

// A write that fails halfway leaves what was written before it, which the
// counts say; running Copy again copies the rest, and Check then passes.
func TestCopyResumes(t *testing.T) {
	ctx := t.Context()
	from, to := memory.New(), memory.New()
	at := time.Now()
	for _, err := range []error{
		from.CreateClient(ctx, store.Client{ID: "app", CreatedAt: at}),
		from.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "$h", CreatedAt: at}),
		from.CreateSession(ctx, store.Session{ID: "s", Hash: []byte{1}, Subject: "alice", AuthTime: at, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	counts, err := storecopy.Copy(ctx, from, failingUsers{to}, nil)
	if !errors.Is(err, errDown) {
		t.Fatalf("Copy onto a failing target: %v", err)
	}
	copied := map[string]int{}
	for _, c := range counts {
		copied[c.Kind] = c.Copied
	}
	if copied[storecopy.KindClients] != 1 || copied[storecopy.KindUsers] != 0 || copied[storecopy.KindSessions] != 0 {
		t.Fatalf("counts after a failed write: %+v", counts)
	}
	if _, err := storecopy.Copy(ctx, from, to, nil); err != nil {
		t.Fatalf("Copy again: %v", err)
	}
	if _, err := storecopy.Check(ctx, from, to, nil); err != nil {
		t.Fatalf("Check after the resumed copy: %v", err)
	}
}
