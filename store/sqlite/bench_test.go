package sqlite_test

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

// BenchmarkRotate measures rotations from 16 goroutines, each rotating its
// own family, with group commit and without it (Batch 1, the anchor: one
// fsync per rotation).
func BenchmarkRotate(b *testing.B) {
	for _, batch := range []int{0, 1} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, err := sqlite.OpenWithOptions(b.Context(), filepath.Join(b.TempDir(), "b.db"), sqlite.Options{Batch: batch})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			var next atomic.Int64
			b.SetParallelism(8) // 16 goroutines on 2 cores, as tokend bench --clients 16
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprint("f", next.Add(1))
				cur := rand.Text()
				f := store.Family{ID: id, ClientID: "c", Subject: id, CreatedAt: now, LastUsedAt: now,
					IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), TokenHash: []byte(cur)}
				if err := s.CreateFamily(b.Context(), f); err != nil {
					b.Error(err)
					return
				}
				for gen := int64(0); pb.Next(); gen++ {
					n := rand.Text()
					res, err := s.Rotate(b.Context(), store.RotateRequest{FamilyID: id, Generation: gen, Old: []byte(cur), New: []byte(n), ClientID: "c",
						Now: now, IdleExpiresAt: now.Add(time.Hour)})
					if err != nil || res.Outcome != store.Rotated {
						b.Errorf("rotate: %v %v", res.Outcome, err)
						return
					}
					cur = n
				}
			})
		})
	}
}
