package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// The rule of Rotate, from the family's record alone.
func TestDecide(t *testing.T) {
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	cur, prev, next := []byte("cur"), []byte("prev"), []byte("next")
	f := store.Family{ID: "f", ClientID: "c", Generation: 3, TokenHash: cur, PreviousHash: prev, RotatedAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(time.Hour)}
	revoked := f
	revoked.RevokedAt = t0
	current := store.RotateRequest{Generation: 3, Old: cur, New: next, Grace: 10 * time.Second}
	retry := store.RotateRequest{Generation: 2, Old: prev, New: cur, Grace: 10 * time.Second}
	with := func(r store.RotateRequest, edit func(*store.RotateRequest)) store.RotateRequest { edit(&r); return r }
	now := t0.Add(5 * time.Second)
	cases := []struct {
		name    string
		f       store.Family
		req     store.RotateRequest
		now     time.Time
		want    store.Outcome
		wantErr error
	}{
		{"current", f, current, now, store.Rotated, nil},
		{"retry within grace", f, retry, now, store.Repeated, nil},
		{"retry at grace's end", f, retry, t0.Add(10 * time.Second), store.Repeated, nil},
		{"retry after grace", f, retry, t0.Add(10*time.Second + time.Nanosecond), store.ReuseDetected, nil},
		{"retry to another successor", f, with(retry, func(r *store.RotateRequest) { r.New = []byte("else") }), now, store.ReuseDetected, nil},
		{"retry finding an alternate", f, with(retry, func(r *store.RotateRequest) { r.New, r.Alternates = []byte("else"), [][]byte{[]byte("x"), cur} }), now, store.Repeated, nil},
		{"retry finding no alternate", f, with(retry, func(r *store.RotateRequest) { r.New, r.Alternates = []byte("else"), [][]byte{[]byte("x")} }), now, store.ReuseDetected, nil},
		{"an alternate after grace", f, with(retry, func(r *store.RotateRequest) { r.New, r.Alternates = []byte("else"), [][]byte{cur} }), t0.Add(11 * time.Second), store.ReuseDetected, nil},
		{"alternates of the current token", f, with(current, func(r *store.RotateRequest) { r.Alternates = [][]byte{cur, prev} }), now, store.Rotated, nil},
		{"older generation", f, store.RotateRequest{Generation: 1, Old: []byte("old"), New: prev}, now, store.ReuseDetected, nil},
		{"first generation", f, store.RotateRequest{Generation: 0, Old: []byte("first")}, now, store.ReuseDetected, nil},
		{"generation ahead", f, with(current, func(r *store.RotateRequest) { r.Generation = 4 }), now, 0, store.ErrNotFound},
		{"negative generation", f, with(current, func(r *store.RotateRequest) { r.Generation = -1 }), now, 0, store.ErrNotFound},
		{"current generation, other hash", f, with(current, func(r *store.RotateRequest) { r.Old = []byte("forged") }), now, 0, store.ErrNotFound},
		{"previous generation, other hash", f, with(retry, func(r *store.RotateRequest) { r.Old = []byte("forged") }), now, 0, store.ErrNotFound},
		{"another client's", f, with(current, func(r *store.RotateRequest) { r.ClientID = "other" }), now, 0, store.ErrNotFound},
		{"the owner's", f, with(current, func(r *store.RotateRequest) { r.ClientID = "c" }), now, store.Rotated, nil},
		{"revoked", revoked, current, now, 0, store.ErrRevoked},
		{"revoked, a forged token", revoked, with(current, func(r *store.RotateRequest) { r.Old = []byte("forged") }), now, 0, store.ErrNotFound},
		{"expired", f, current, t0.Add(time.Hour), 0, store.ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.Decide(tc.f, tc.req, tc.now)
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Decide = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// What each outcome writes, on the store's clock.
func TestAfter(t *testing.T) {
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	f := store.Family{ID: "f", Generation: 3, TokenHash: []byte("cur"), PreviousHash: []byte("prev"), RotatedAt: t0,
		LastUsedAt: t0, IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(2 * time.Hour)}
	// The caller's clock is 10 s behind the store's and asks for 30 min
	// of idle time.
	storeNow := t0.Add(time.Minute)
	req := store.RotateRequest{Generation: 3, Old: []byte("cur"), New: []byte("next"), Now: storeNow.Add(-10 * time.Second)}
	req.IdleExpiresAt = req.Now.Add(30 * time.Minute)

	got := store.After(f, req, store.Rotated, storeNow)
	if got.Generation != 4 || string(got.TokenHash) != "next" || string(got.PreviousHash) != "cur" || !got.RotatedAt.Equal(storeNow) ||
		!got.LastUsedAt.Equal(storeNow) || !got.IdleExpiresAt.Equal(storeNow.Add(30*time.Minute)) {
		t.Fatalf("after a rotation: %+v", got)
	}
	req.New[0] = 'N'
	if !bytes.Equal(got.TokenHash, []byte("next")) {
		t.Fatal("After shares the request's memory")
	}
	req.IdleExpiresAt = req.Now.Add(5 * time.Hour)
	if got := store.After(f, req, store.Rotated, storeNow); !got.IdleExpiresAt.Equal(f.ExpiresAt) {
		t.Fatalf("idle expiry %v past the absolute %v", got.IdleExpiresAt, f.ExpiresAt)
	}
	if got := store.After(f, req, store.ReuseDetected, storeNow); !got.RevokedAt.Equal(storeNow) || got.RevokeReason != store.ReasonReuse || got.Generation != 3 {
		t.Fatalf("after reuse: %+v", got)
	}
	if got := store.After(f, req, store.Repeated, storeNow); got.Generation != 3 || !got.RevokedAt.IsZero() || !got.LastUsedAt.Equal(t0) {
		t.Fatalf("after a repeat: %+v", got)
	}
}

// Rebase moves a family's times onto another clock, keeping its lifetimes.
func TestRebase(t *testing.T) {
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	f := store.Family{CreatedAt: t0, LastUsedAt: t0, IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour)}
	got := f.Rebase(t0.Add(10 * time.Second))
	if !got.CreatedAt.Equal(t0.Add(10*time.Second)) || got.IdleExpiresAt.Sub(got.CreatedAt) != time.Hour ||
		got.ExpiresAt.Sub(got.CreatedAt) != 24*time.Hour || !got.RotatedAt.IsZero() || !got.RevokedAt.IsZero() {
		t.Fatalf("Rebase = %+v", got)
	}
}

// CompareAndRotate decides again after a lost write, stops at its bound
// with ErrConflict and ErrUnavailable, and never writes a Repeated or an
// ended family.
func TestCompareAndRotate(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	f := store.Family{ID: "f", Generation: 0, TokenHash: []byte("t0"), IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(time.Hour)}
	req := store.RotateRequest{FamilyID: "f", Old: []byte("t0"), New: []byte("t1"), Now: t0, Grace: time.Minute, IdleExpiresAt: t0.Add(time.Hour)}
	read := func(fs ...store.Family) (func(context.Context) (store.Family, time.Time, error), *int) {
		n := 0
		return func(context.Context) (store.Family, time.Time, error) {
			n++
			return fs[min(n, len(fs))-1], t0, nil
		}, &n
	}
	writes := 0
	lose := func(context.Context, store.Family, store.Family, store.Outcome) (store.Family, bool, error) {
		writes++
		return store.Family{}, false, nil
	}

	// The first write loses to a rotation to the same successor: the
	// second round reads it and answers Repeated without writing.
	rotated := store.After(f, req, store.Rotated, t0)
	r, n := read(f, rotated)
	res, err := store.CompareAndRotate(ctx, req, r, lose)
	if err != nil || res.Outcome != store.Repeated || *n != 2 || writes != 1 || res.Family.Generation != 1 {
		t.Fatalf("after a lost write: %v %v, %d reads, %d writes", res.Outcome, err, *n, writes)
	}
	// Losing every round: the bound, nothing written.
	writes = 0
	r, n = read(f)
	_, err = store.CompareAndRotate(ctx, req, r, lose)
	if !errors.Is(err, store.ErrConflict) || !errors.Is(err, store.ErrUnavailable) || *n != 8 || writes != 8 {
		t.Fatalf("always losing: %v after %d reads, %d writes", err, *n, writes)
	}
	// An ended family comes back with the error, and nothing is written.
	writes = 0
	revoked := f
	revoked.RevokedAt = t0
	r, _ = read(revoked)
	res, err = store.CompareAndRotate(ctx, req, r, lose)
	if !errors.Is(err, store.ErrRevoked) || res.Family.ID != "f" || writes != 0 {
		t.Fatalf("revoked: %v %+v, %d writes", err, res.Family, writes)
	}
}
