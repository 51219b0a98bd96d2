package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokend/tokend/secrets"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
	"github.com/tokend/tokend/store/sealed"
)

// legacyStore is a memory store that holds, as an SQLite database of
// schema version 2 did, refresh tokens of the format before tags: a
// family whose current token is one depends on no secret.
type legacyStore struct {
	*memory.Store
	legacy map[string]string // token hash → family
}

func (l legacyStore) LegacyToken(_ context.Context, hash []byte) (string, int64, error) {
	if id, ok := l.legacy[string(hash)]; ok {
		return id, 0, nil
	}
	return "", 0, fmt.Errorf("legacy token: %w", store.ErrNotFound)
}

// family stores a family of client c last issued a token at issued: at its
// start (generation 0) or by its last rotation.
func family(t *testing.T, st store.Store, id string, start, issued time.Time) {
	t.Helper()
	f := store.Family{ID: id, ClientID: "c", Subject: "alice", CreatedAt: start, LastUsedAt: issued,
		IdleExpiresAt: issued.Add(24 * time.Hour), ExpiresAt: start.Add(90 * 24 * time.Hour), TokenHash: []byte("hash of " + id)}
	if !issued.Equal(start) {
		f.Generation, f.RotatedAt, f.PreviousHash = 3, issued, []byte("previous of "+id)
	}
	if err := st.CreateFamily(t.Context(), f); err != nil {
		t.Fatal(err)
	}
}

// A rotation adds a secret that takes over a lead later; retiring ends
// exactly the families last issued a token before it took over (plus
// Skew), leaves those refreshed since, the ended ones and those whose
// token is of the format before tags, says how many, and leaves the ring
// with the current secret alone.
func TestRotateRetire(t *testing.T) {
	ctx := t.Context()
	mem := memory.New()
	st := legacyStore{Store: mem, legacy: map[string]string{"hash of legacy": "legacy"}}
	first, err := secrets.Load(ctx, st)
	if err != nil || len(first) != 1 || first[0].Seq != 1 || len(first[0].Value) != secrets.Size {
		t.Fatalf("Load on an empty store = %+v, %v", first, err)
	}
	if again, _ := secrets.Load(ctx, st); !equal(again, first) {
		t.Fatal("a second Load made another secret")
	}
	if _, err := secrets.Retire(ctx, st, t0, secrets.DefaultSkew); !errors.Is(err, secrets.ErrNothingToRetire) {
		t.Fatalf("Retire with one secret: %v", err)
	}

	lead := 30 * time.Second
	added, err := secrets.Rotate(ctx, st, t0, lead)
	if err != nil || added.Seq != 2 || !added.ActiveFrom.Equal(t0.Add(lead)) || !added.CreatedAt.Equal(t0) || bytes.Equal(added.Value, first[0].Value) {
		t.Fatalf("Rotate = %+v, %v", added, err)
	}
	ring, err := secrets.Load(ctx, st)
	if err != nil || len(ring) != 2 || !equal(ring[:1], first) || !equal(ring[1:], secrets.Ring{added}) {
		t.Fatalf("after Rotate the ring is %+v, %v", ring, err)
	}
	if _, err := secrets.Rotate(ctx, st, t0.Add(lead-time.Nanosecond), lead); !errors.Is(err, secrets.ErrPending) {
		t.Fatalf("a second Rotate before the first takes over: %v", err)
	}
	if _, err := secrets.Retire(ctx, st, t0.Add(lead-time.Nanosecond), secrets.DefaultSkew); !errors.Is(err, secrets.ErrNothingToRetire) {
		t.Fatalf("Retire before the new secret takes over: %v", err)
	}
	cutoff := t0.Add(lead + secrets.DefaultSkew)
	if _, err := secrets.Retire(ctx, st, cutoff.Add(-time.Nanosecond), secrets.DefaultSkew); !errors.Is(err, secrets.ErrTooSoon) {
		t.Fatalf("Retire within Skew of the takeover: %v", err)
	}

	start := t0.Add(-time.Hour)
	family(t, st, "idle", start, start)                          // never refreshed: depends on secret 1
	family(t, st, "before", start, cutoff.Add(-time.Nanosecond)) // refreshed just before the cutoff
	family(t, st, "after", start, cutoff)                        // refreshed at the cutoff: secret 2
	family(t, st, "new", cutoff.Add(time.Minute), cutoff.Add(time.Minute))
	family(t, st, "legacy", start, start)
	family(t, st, "revoked", start, start)
	if err := st.RevokeFamily(ctx, "revoked", start, "logout"); err != nil {
		t.Fatal(err)
	}
	now := cutoff.Add(2 * time.Minute)
	n, gotCutoff, err := secrets.Dependents(ctx, st, ring, now, secrets.DefaultSkew)
	if err != nil || n != 2 || !gotCutoff.Equal(cutoff) {
		t.Fatalf("Dependents = %d, %v, %v; want 2 (idle, before), %v", n, gotCutoff, err, cutoff)
	}
	ret, err := secrets.Retire(ctx, st, now, secrets.DefaultSkew)
	if err != nil || ret.Ended != 2 || ret.Current != 2 || len(ret.Retired) != 1 || ret.Retired[0] != 1 || !ret.Cutoff.Equal(cutoff) {
		t.Fatalf("Retire = %+v, %v; want secret 1 retired and 2 logins ended", ret, err)
	}
	for id, reason := range map[string]string{"idle": secrets.ReasonRetired, "before": secrets.ReasonRetired, "after": "", "new": "", "legacy": "", "revoked": "logout"} {
		if f, err := st.GetFamily(ctx, id); err != nil || f.RevokeReason != reason {
			t.Errorf("login %s after Retire: revoked %q (%v); want %q", id, f.RevokeReason, err, reason)
		}
	}
	ring, err = secrets.Load(ctx, st)
	if err != nil || !equal(ring, secrets.Ring{added}) {
		t.Fatalf("after Retire the ring is %+v, %v; want secret 2 alone", ring, err)
	}
	if n, _, err := secrets.Dependents(ctx, st, ring, now, secrets.DefaultSkew); err != nil || n != 0 {
		t.Fatalf("Dependents after Retire = %d, %v", n, err)
	}
	if _, err := secrets.Retire(ctx, st, now, secrets.DefaultSkew); !errors.Is(err, secrets.ErrNothingToRetire) {
		t.Fatalf("Retire again: %v", err)
	}
}

// A ring holds at most MaxSecrets.
func TestRotateFull(t *testing.T) {
	st := memory.New()
	now := t0
	for i := 1; i < secrets.MaxSecrets; i++ {
		if _, err := secrets.Rotate(t.Context(), st, now, 0); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		now = now.Add(time.Second)
	}
	if _, err := secrets.Rotate(t.Context(), st, now, 0); !errors.Is(err, secrets.ErrFull) {
		t.Fatalf("rotation past %d secrets: %v", secrets.MaxSecrets, err)
	}
}

// Behind an operator key the ring is stored sealed: the new secret never
// reaches the store in clear.
func TestRotateSealed(t *testing.T) {
	inner := memory.New()
	k, err := sealed.NewKey(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := sealed.Wrap(inner, sealed.Keyring{Current: k})
	added, err := secrets.Rotate(t.Context(), st, t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := inner.Secret(t.Context(), secrets.Name, nil)
	if err != nil || !bytes.HasPrefix(raw, []byte("tks1")) || bytes.Contains(raw, added.Value) {
		t.Fatalf("the stored ring is %.8q..., %v; want it sealed", raw, err)
	}
	ring, err := secrets.Load(t.Context(), st)
	if err != nil || len(ring) != 2 || !bytes.Equal(ring[1].Value, added.Value) {
		t.Fatalf("Load through the key = %+v, %v", ring, err)
	}
}
