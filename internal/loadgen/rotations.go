package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Group is one configuration under load: the client of its servers,
// which take the requests in turn, and the label of the table's throttle
// column (such as "on" or "off").
type Group struct {
	Throttle string
	Client   *Client
}

// Rotations is a run of RunRotations.
type Rotations struct {
	// Groups are measured one after the other at every level, every
	// other level in reverse order, so that drift hits each alike.
	Groups []Group
	// Levels are the numbers of concurrent virtual clients, each level
	// run for Duration.
	Levels   []int
	Duration time.Duration
	// Against names the servers in the table's heading.
	Against string
}

// RunRotations writes to w a heading and, once every level has run, a
// table: per level and group the rotations, their rate, latency
// percentiles and the failed answers by status. It stops at the first
// run that cannot start its families (the error wraps ErrUnauthorized or
// ErrForbidden if the target refused the client), leaving the table
// unwritten.
func RunRotations(ctx context.Context, w io.Writer, r Rotations) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "tokend bench: refresh_token rotations against %s, %v per level\n", r.Against, r.Duration)
	fmt.Fprintln(tw, "clients\tinstances\tthrottle\trotations\trotations/s\tp50\tp99\tmax\terrors\t")
	for l, n := range r.Levels {
		for k := range r.Groups {
			i := k
			if l%2 == 1 { // every other level in reverse, so that drift hits every mode alike
				i = len(r.Groups) - 1 - k
			}
			g := r.Groups[i]
			res, err := g.Client.run(ctx, n, r.Duration)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", n, len(g.Client.bases), g.Throttle, res.ok, float64(res.ok)/res.elapsed.Seconds(),
				pct(res.lat, 0.50), pct(res.lat, 0.99), pct(res.lat, 1), res.errors())
		}
	}
	return tw.Flush()
}

// result is what the virtual clients of one run measured.
type result struct {
	ok       int
	elapsed  time.Duration
	lat      []time.Duration
	byStatus map[int]int
	lost     int // families that could not continue (their token was rejected)
}

// errors lists the failed answers by status: "3×429 1×503", or "0".
func (r *result) errors() string {
	if len(r.byStatus) == 0 {
		return "0"
	}
	var parts []string
	for code, n := range r.byStatus {
		parts = append(parts, fmt.Sprintf("%d×%d", n, code))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// pct is the p-quantile of the sorted latencies lat, "-" if there are
// none.
func pct(lat []time.Duration, p float64) string {
	if len(lat) == 0 {
		return "-"
	}
	i := int(float64(len(lat)-1) * p)
	return lat[i].Round(10 * time.Microsecond).String()
}

// run drives n virtual clients for d and returns what they measured.
func (c *Client) run(ctx context.Context, n int, d time.Duration) (*result, error) {
	tokens := make([]string, n)
	for i := range n {
		rt, err := c.Mint(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("bench: start family %d: %w", i, err)
		}
		tokens[i] = rt
	}
	res := &result{byStatus: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := range n {
		wg.Go(func() {
			lat, status := c.rotateUntil(ctx, i, tokens[i], deadline)
			mu.Lock()
			defer mu.Unlock()
			res.add(lat, status)
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res, nil
}

// rotateUntil is virtual client i: it rotates its family, starting from
// rt, through the servers in turn until deadline or until the family is
// gone, and returns the latency of every request and the count of failed
// ones by status.
func (c *Client) rotateUntil(ctx context.Context, i int, rt string, deadline time.Time) ([]time.Duration, map[int]int) {
	var lat []time.Duration
	status := map[int]int{}
	for k := i; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
		t0 := time.Now()
		next, code, err := c.rotateAt(ctx, c.bases[k%len(c.bases)], rt)
		lat = append(lat, time.Since(t0))
		if err != nil || code != http.StatusOK {
			status[code]++
			if code == http.StatusBadRequest {
				break // the family is gone: a lost family
			}
			continue
		}
		rt = next
	}
	return lat, status
}

// add counts one virtual client's latencies and failures.
func (r *result) add(lat []time.Duration, status map[int]int) {
	r.lat = append(r.lat, lat...)
	for c, k := range status {
		r.byStatus[c] += k
		if c == http.StatusBadRequest {
			r.lost++
		}
	}
	r.ok += len(lat) - sumValues(status)
}

func sumValues(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
