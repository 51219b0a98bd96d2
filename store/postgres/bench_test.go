package postgres_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
)

// BenchmarkRotate rotates on one handle with the default clock (the
// database's), from 1, 4 and 16 goroutines, each rotating a family of its
// own one token after another, as that many clients refreshing their own
// logins: the compare-and-set (CAS) of Rotate, and for comparison one
// transaction that locks the row (ForUpdate, see export_test.go). The
// handle's pool has the default size, DefaultMaxConns connections, as the
// server's has unless its URL sets pool_max_conns; and, at 16 goroutines,
// also 4 (conns=4, pgxpool's default on 2 cores). It reports rotations/s.
func BenchmarkRotate(b *testing.B) {
	for _, way := range []struct {
		name   string
		rotate func(*postgres.Store) func(b *testing.B, r store.RotateRequest) (store.RotateResult, error)
	}{
		{"CAS", func(s *postgres.Store) func(b *testing.B, r store.RotateRequest) (store.RotateResult, error) {
			return func(b *testing.B, r store.RotateRequest) (store.RotateResult, error) { return s.Rotate(b.Context(), r) }
		}},
		{"ForUpdate", func(s *postgres.Store) func(b *testing.B, r store.RotateRequest) (store.RotateResult, error) {
			return func(b *testing.B, r store.RotateRequest) (store.RotateResult, error) {
				return postgres.RotateForUpdate(b.Context(), s, r)
			}
		}},
	} {
		for _, c := range []struct{ n, conns int }{{1, 0}, {4, 0}, {16, 0}, {16, 4}} {
			n, pool, name := c.n, "", fmt.Sprintf("%s/goroutines=%d", way.name, c.n)
			if c.conns > 0 {
				pool, name = fmt.Sprintf("&pool_max_conns=%d", c.conns), fmt.Sprintf("%s/conns=%d", name, c.conns)
			}
			b.Run(name, func(b *testing.B) {
				s := open(b, newSchema(b)+pool)
				rotate := way.rotate(s)
				curs := make([]store.RotateRequest, n)
				for i := range curs {
					now := time.Now()
					f := store.Family{ID: fmt.Sprint("f", i), ClientID: "c", Subject: "alice", CreatedAt: now, LastUsedAt: now,
						IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour), TokenHash: newHash()}
					if err := s.CreateFamily(b.Context(), f); err != nil {
						b.Fatal(err)
					}
					curs[i] = store.RotateRequest{FamilyID: f.ID, Old: f.TokenHash, Grace: 30 * time.Second}
				}
				var left atomic.Int64
				left.Store(int64(b.N))
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						r := curs[i]
						for left.Add(-1) >= 0 {
							r.New, r.Now = newHash(), time.Now()
							r.IdleExpiresAt = r.Now.Add(time.Hour)
							res, err := rotate(b, r)
							if err != nil || res.Outcome != store.Rotated {
								b.Error(res.Outcome, err)
								return
							}
							r.Generation, r.Old = res.Family.Generation, r.New
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
			})
		}
	}
}
