package redis_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRotate rotates on Redis's clock with 1, 4 and 16 goroutines,
// each rotating a family of its own again and again (as tokend bench's
// virtual clients do): ns/op is the time per rotation of all of them
// together, rotations/s its inverse.
func BenchmarkRotate(b *testing.B) {
	for _, g := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s := open(b, newPrefix(b), nil)
			curs := make([][]byte, g)
			gens := make([]int64, g)
			for i := range g {
				curs[i] = newFamily(b, s, fmt.Sprint("f", i))
			}
			var left atomic.Int64
			left.Store(int64(b.N))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i := range g {
				wg.Go(func() {
					id := fmt.Sprint("f", i)
					for left.Add(-1) >= 0 {
						next, err := rotateOnce(b.Context(), s, id, curs[i], gens[i])
						if err != nil {
							b.Error(err)
							return
						}
						curs[i], gens[i] = next, gens[i]+1
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rotations/s")
		})
	}
}
