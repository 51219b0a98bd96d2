// Package backoff computes retry delays: exponential growth with full
// jitter, capped.
package backoff

import (
	"math"
	"time"
)

// Full returns the wait before retry n (n ≥ 1): a uniform random duration
// below min(hi, lo·2^(n-1)). jitter(k) must return a uniform random number
// in [0, k) (math/rand/v2's Int64N).
func Full(n int, lo, hi time.Duration, jitter func(int64) int64) time.Duration {
	ceiling := hi
	if n < 62 {
		if c := float64(lo) * math.Exp2(float64(n-1)); c < float64(hi) {
			ceiling = time.Duration(c)
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(jitter(int64(ceiling)))
}
