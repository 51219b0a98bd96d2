package loadgen

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The table's cells: failed answers by status, sorted, and latency
// quantiles of sorted samples.
func TestResultCells(t *testing.T) {
	r := &result{byStatus: map[int]int{}}
	if got := r.errors(); got != "0" {
		t.Errorf("no failures: %q", got)
	}
	r.add([]time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, map[int]int{http.StatusBadRequest: 1})
	r.add([]time.Duration{4 * time.Millisecond}, map[int]int{http.StatusServiceUnavailable: 1})
	if r.ok != 2 || r.lost != 1 || r.errors() != "1×400 1×503" {
		t.Errorf("ok %d, lost %d, errors %q", r.ok, r.lost, r.errors())
	}
	if pct(nil, 0.5) != "-" || pct(r.lat, 0.5) != "2ms" || pct(r.lat, 1) != "4ms" {
		t.Errorf("pct: %s %s %s", pct(nil, 0.5), pct(r.lat, 0.5), pct(r.lat, 1))
	}
}

// A mint the target refuses is ErrUnauthorized (401) or ErrForbidden
// (403).
func TestMintRefused(t *testing.T) {
	for code, want := range map[int]error{http.StatusUnauthorized: ErrUnauthorized, http.StatusForbidden: ErrForbidden} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id, secret, ok := r.BasicAuth(); !ok || id != "bench" || secret != "s" || r.URL.Path != "/v1/tokens" {
				t.Errorf("request %s as %q", r.URL.Path, id)
			}
			w.WriteHeader(code)
		}))
		c := NewClient(ts.Client(), []string{ts.URL + "/"}, "bench", "s")
		if _, err := c.Mint(t.Context(), 0); !errors.Is(err, want) {
			t.Errorf("%d: %v, want %v", code, err, want)
		}
		ts.Close()
	}
}
