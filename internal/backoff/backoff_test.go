package backoff

import (
	"testing"
	"time"
)

// Full draws below a ceiling that doubles from lo and stops at hi.
func TestFull(t *testing.T) {
	top := func(k int64) int64 { return k - 1 } // the largest draw
	cases := []struct {
		n    int
		want time.Duration
	}{
		{1, time.Second - 1}, {2, 2*time.Second - 1}, {3, 4*time.Second - 1},
		{7, 60*time.Second - 1}, {62, 60*time.Second - 1}, {1000, 60*time.Second - 1},
	}
	for _, tc := range cases {
		if got := Full(tc.n, time.Second, time.Minute, top); got != tc.want {
			t.Errorf("Full(%d) at its largest = %v, want %v", tc.n, got, tc.want)
		}
	}
	if got := Full(3, time.Second, time.Minute, func(int64) int64 { return 0 }); got != 0 {
		t.Errorf("Full at its smallest = %v, want 0", got)
	}
	if got := Full(1, 0, time.Minute, top); got != 0 {
		t.Errorf("Full with a zero lo = %v, want 0", got)
	}
}
