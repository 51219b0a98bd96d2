package postgres

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres/pgtest"
)

// Rotate's compare-and-set loses to a writer that changes the family
// between its read and its write (another handle, through the raced
// hook), and then decides again from the family as that writer left it.
func TestRotateLosesRace(t *testing.T) {
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	hash := func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return b
	}
	req := func(gen int64, old, next []byte) store.RotateRequest {
		return store.RotateRequest{FamilyID: "f", Generation: gen, Old: old, New: next, Now: t0.Add(time.Second),
			Grace: 30 * time.Second, IdleExpiresAt: t0.Add(time.Hour)}
	}
	cases := []struct {
		name string
		// setup moves the family on before the race and returns the
		// request that loses it; other is what the other handle does.
		setup    func(t *testing.T, s *Store, h0 []byte) store.RotateRequest
		other    func(t *testing.T, s *Store, r store.RotateRequest) error
		want     store.Outcome
		wantErr  error
		attempts int
		check    func(t *testing.T, f store.Family)
	}{
		{
			name:  "rotated to the same successor first: repeated",
			setup: func(_ *testing.T, _ *Store, h0 []byte) store.RotateRequest { return req(0, h0, hash()) },
			other: func(t *testing.T, s *Store, r store.RotateRequest) error {
				_, err := s.Rotate(t.Context(), r)
				return err
			},
			want: store.Repeated, attempts: 2,
			check: func(t *testing.T, f store.Family) {
				if f.Generation != 1 || !f.RevokedAt.IsZero() {
					t.Errorf("family %+v; want generation 1, active", f)
				}
			},
		},
		{
			name:  "rotated to another successor first: reuse",
			setup: func(_ *testing.T, _ *Store, h0 []byte) store.RotateRequest { return req(0, h0, hash()) },
			other: func(t *testing.T, s *Store, r store.RotateRequest) error {
				r.New = hash()
				_, err := s.Rotate(t.Context(), r)
				return err
			},
			want: store.ReuseDetected, attempts: 2,
			check: func(t *testing.T, f store.Family) {
				if f.Generation != 1 || f.RevokeReason != store.ReasonReuse {
					t.Errorf("family %+v; want generation 1, revoked for reuse", f)
				}
			},
		},
		{
			name: "revoked first while reuse is being revoked: the first revocation wins",
			setup: func(t *testing.T, s *Store, h0 []byte) store.RotateRequest {
				if _, err := s.Rotate(t.Context(), req(0, h0, hash())); err != nil {
					t.Fatal(err)
				}
				return req(0, h0, hash()) // another successor: reuse
			},
			other: func(t *testing.T, s *Store, _ store.RotateRequest) error {
				return s.RevokeFamily(t.Context(), "f", t0, "logout")
			},
			wantErr: store.ErrRevoked, attempts: 2,
			check: func(t *testing.T, f store.Family) {
				if f.RevokeReason != "logout" || !f.RevokedAt.Equal(t0) {
					t.Errorf("family %+v; want revoked for logout at %v", f, t0)
				}
			},
		},
		{
			name:  "revoked (a logout) while the rotation is being written: revoked, no rotation",
			setup: func(_ *testing.T, _ *Store, h0 []byte) store.RotateRequest { return req(0, h0, hash()) },
			other: func(t *testing.T, s *Store, _ store.RotateRequest) error {
				return s.RevokeFamily(t.Context(), "f", t0, "logout")
			},
			wantErr: store.ErrRevoked, attempts: 2,
			check: func(t *testing.T, f store.Family) {
				if f.Generation != 0 || f.RevokeReason != "logout" {
					t.Errorf("family %+v; want generation 0, revoked for logout", f)
				}
			},
		},
		{
			name:  "deleted first: not found",
			setup: func(_ *testing.T, _ *Store, h0 []byte) store.RotateRequest { return req(0, h0, hash()) },
			other: func(t *testing.T, s *Store, _ store.RotateRequest) error {
				_, err := s.DeleteExpired(t.Context(), t0.Add(48*time.Hour))
				return err
			},
			wantErr: store.ErrNotFound, attempts: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := pgtest.ServerURL + pgtest.Schema(t)
			a, b := openTest(t, u), openTest(t, u)
			h0 := hash()
			f := store.Family{ID: "f", ClientID: "c", Subject: "alice", CreatedAt: t0, LastUsedAt: t0,
				IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour), TokenHash: h0}
			if err := a.CreateFamily(t.Context(), f); err != nil {
				t.Fatal(err)
			}
			r := tc.setup(t, a, h0)
			attempts := 0
			a.raced = func(attempt int) {
				attempts++
				if attempt == 0 {
					if err := tc.other(t, b, r); err != nil {
						t.Error(err)
					}
				}
			}
			res, err := a.Rotate(t.Context(), r)
			if res.Outcome != tc.want || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Rotate that lost the race: %v %v; want %v %v", res.Outcome, err, tc.want, tc.wantErr)
			}
			if attempts != tc.attempts {
				t.Errorf("Rotate read the family %d times, want %d", attempts, tc.attempts)
			}
			if tc.check == nil {
				return
			}
			tc.check(t, res.Family)
			got, err := b.GetFamily(t.Context(), "f")
			if err != nil {
				t.Fatal(err)
			}
			if got.Generation != res.Family.Generation || !bytes.Equal(got.TokenHash, res.Family.TokenHash) ||
				!got.RevokedAt.Equal(res.Family.RevokedAt) || got.RevokeReason != res.Family.RevokeReason {
				t.Errorf("Rotate answered %+v, the store holds %+v", res.Family, got)
			}
		})
	}
}

// openTest opens a Store with the caller's clock on u, closed when t ends.
func openTest(t *testing.T, u string) *Store {
	t.Helper()
	s, err := Open(t.Context(), u, WithCallerClock())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
