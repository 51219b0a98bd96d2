package postgres_test

import (
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// BenchmarkRotate rotates one family's current token, one Rotate after
// another on one handle: the latency of the rotation transaction.
func BenchmarkRotate(b *testing.B) {
	s := open(b, newSchema(b))
	cur := newHash()
	f := store.Family{ID: "f", ClientID: "c", Subject: "alice", CreatedAt: t0, LastUsedAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateFamily(b.Context(), f, store.RefreshToken{Hash: cur, IssuedAt: t0}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		next := newHash()
		res, err := s.Rotate(b.Context(), store.RotateRequest{Old: cur, New: next, Now: t0, IdleExpiresAt: t0.Add(time.Hour)})
		if err != nil || res.Outcome != store.Rotated {
			b.Fatal(res.Outcome, err)
		}
		cur = next
	}
}
