package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend/store"
)

// The rule of Rotate, decided from the locked family's generation and the
// presented token.
func TestDecide(t *testing.T) {
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	next := []byte("next")
	f := store.Family{ID: "f", ClientID: "c", Generation: 3, IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(time.Hour)}
	rotated := func(gen int64, at time.Time, succ []byte) presented {
		return presented{generation: gen, rotatedAt: pgtype.Timestamptz{Time: at, Valid: true}, successor: succ}
	}
	revoked := f
	revoked.RevokedAt = t0
	req := store.RotateRequest{New: next, Now: t0.Add(10 * time.Second), Grace: 10 * time.Second}
	other := req
	other.ClientID = "other"
	late := req
	late.Now = t0.Add(time.Hour)
	cases := []struct {
		name    string
		f       store.Family
		old     presented
		req     store.RotateRequest
		want    store.Outcome
		wantErr error
	}{
		{"current", f, presented{generation: 3}, req, store.Rotated, nil},
		{"retry within grace", f, rotated(2, t0.Add(5*time.Second), next), req, store.Repeated, nil},
		{"retry at grace's end", f, rotated(2, t0, next), req, store.Repeated, nil},
		{"retry after grace", f, rotated(2, t0.Add(-time.Nanosecond), next), req, store.ReuseDetected, nil},
		{"other successor", f, rotated(2, t0, []byte("else")), req, store.ReuseDetected, nil},
		{"successor rotated since", f, rotated(1, t0, next), req, store.ReuseDetected, nil},
		{"another client's", f, presented{generation: 3}, other, 0, store.ErrNotFound},
		{"revoked", revoked, presented{generation: 3}, req, 0, store.ErrRevoked},
		{"expired", f, presented{generation: 3}, late, 0, store.ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decide(tc.f, tc.old, tc.req)
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("decide = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
