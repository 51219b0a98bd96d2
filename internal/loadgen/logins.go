package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tokend/tokend/internal/password"
)

// Logins is a run of RunLogins.
type Logins struct {
	// Levels are the numbers of concurrent virtual clients, each level
	// run for Duration.
	Levels   []int
	Duration time.Duration
	// Username and Password are the user who logs in.
	Username, Password string
	// Params are the server's argon2id parameters, for the anchor.
	Params password.Params
	// Local says the server runs in this process: its peak RSS is
	// measured per level.
	Local bool
}

// RunLogins has virtual clients of c log in with the password grant
// (RFC 6749 §4.3) through c's first server, again and again, and writes
// to w a heading and a table, one row per level. Every login answered
// 200 must be usable, so its refresh token is rotated once. A 503 or 429
// is the server shedding load: the client waits its Retry-After (with up
// to 50% jitter) as a real one would. A transport error (a dropped
// connection, a timeout) is a failure. With a Local server, the
// process's peak RSS is measured per level: the server's and the load
// generator's together. Each level is shown beside its anchor, checks/s:
// argon2id alone with the server's Params. The error is the table's
// write error.
func RunLogins(ctx context.Context, w io.Writer, c *Client, l Logins) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "tokend bench: password-grant logins against %s, %v per level\n", c.base, l.Duration)
	fmt.Fprintln(tw, "clients\tchecks/s\tlogins\tlogins/s\tp50\tp99\tmax\trefused\tdropped\tunusable\tother\thealthz max\tpeak RSS\t")
	for _, n := range l.Levels {
		anchor := checkRate(l.Params)
		rss := "-"
		if l.Local {
			resetPeakRSS()
		}
		r := c.runLogins(ctx, n, l.Duration, l.Username, l.Password)
		if peak := peakRSS(); l.Local && peak > 0 {
			rss = fmt.Sprintf("%d MiB", peak>>20)
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%d\t%.1f\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t\n", n, anchor, r.ok, float64(r.ok)/r.elapsed.Seconds(),
			pct(r.lat, 0.50), pct(r.lat, 0.99), pct(r.lat, 1), r.refused, r.dropped, r.unusable, r.errors(), r.healthz.Round(time.Millisecond), rss)
	}
	return tw.Flush()
}

// checkRate is the anchor of a level: argon2id checks of a hash made with
// p per second, GOMAXPROCS at a time, as the machine runs them just
// before the level (on a shared machine, its load shows here too). A
// login cannot be faster than its check.
func checkRate(p password.Params) float64 {
	hash, err := p.Hash("anchor")
	if err != nil {
		return 0
	}
	const each = 8
	procs := runtime.GOMAXPROCS(0)
	_ = password.Check(hash, "anchor") // warm up
	start := time.Now()
	var wg sync.WaitGroup
	for range procs {
		wg.Go(func() {
			for range each {
				_ = password.Check(hash, "anchor")
			}
		})
	}
	wg.Wait()
	return float64(procs*each) / time.Since(start).Seconds()
}

// loginResult is what the virtual clients of one login run measured.
type loginResult struct {
	result
	refused  int // 503 or 429 with Retry-After
	dropped  int // no answer: a transport error
	unusable int // a 200 whose refresh token did not rotate
	healthz  time.Duration
}

// runLogins drives n virtual clients for d.
func (c *Client) runLogins(ctx context.Context, n int, d time.Duration, user, pass string) *loginResult {
	res := &loginResult{result: result{byStatus: map[int]int{}}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	probeCtx, stopProbe := context.WithDeadline(ctx, deadline)
	defer stopProbe()
	probe := make(chan time.Duration, 1)
	go func() { probe <- c.probeHealth(probeCtx) }()
	for range n {
		wg.Go(func() {
			one := c.loginUntil(ctx, deadline, user, pass)
			mu.Lock()
			defer mu.Unlock()
			res.add(one)
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.healthz = <-probe
	slices.Sort(res.lat)
	return res
}

// loginUntil is one virtual client: it logs in again and again until
// deadline and returns what it measured.
func (c *Client) loginUntil(ctx context.Context, deadline time.Time, user, pass string) *loginResult {
	r := &loginResult{result: result{byStatus: map[int]int{}}}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		t0 := time.Now()
		rt, code, retry, err := c.login(ctx, user, pass)
		switch {
		case err != nil:
			r.dropped++
		case code == http.StatusOK:
			r.lat = append(r.lat, time.Since(t0))
			if _, code, err := c.Rotate(ctx, rt); err != nil || code != http.StatusOK {
				r.unusable++
			}
		case (code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests) && retry > 0:
			r.refused++
			wait := retry + time.Duration(rand.Int64N(int64(retry/2)+1))
			select {
			case <-time.After(min(wait, time.Until(deadline))):
			case <-ctx.Done():
			}
		default:
			r.byStatus[code]++
		}
	}
	return r
}

// add counts one virtual client's measures.
func (r *loginResult) add(one *loginResult) {
	r.lat = append(r.lat, one.lat...)
	r.ok += len(one.lat)
	r.refused += one.refused
	r.dropped += one.dropped
	r.unusable += one.unusable
	for c, k := range one.byStatus {
		r.byStatus[c] += k
	}
}

// login runs the password grant and returns the refresh token, the status
// and the Retry-After of a refusal.
func (c *Client) login(ctx context.Context, user, pass string) (string, int, time.Duration, error) {
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.id, c.secret)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", 0, 0, err
	}
	defer resp.Body.Close()
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", resp.StatusCode, 0, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &out); err != nil || out.RefreshToken == "" {
			return "", resp.StatusCode, 0, errors.New("malformed answer")
		}
	}
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return out.RefreshToken, resp.StatusCode, time.Duration(secs) * time.Second, nil
}

// probeHealth asks /healthz every 100ms until ctx ends and returns the
// longest answer time (a failed probe counts as the time until it failed).
func (c *Client) probeHealth(ctx context.Context) time.Duration {
	var worst time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		t0 := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
		if err == nil {
			var resp *http.Response
			if resp, err = c.hc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		if ctx.Err() != nil {
			return worst
		}
		worst = max(worst, time.Since(t0))
		select {
		case <-ctx.Done():
			return worst
		case <-tick.C:
		}
	}
}
