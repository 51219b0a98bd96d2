package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tokend/tokend/internal/password"
)

// benchLogins is bench --grant password: n virtual clients each log in
// with the password grant again and again for d; every login answered 200
// must be usable, so its refresh token is rotated once. A 503 or 429 is
// the server shedding load: the client waits its Retry-After (with up to
// 50% jitter) as a real one would. A transport error (a dropped
// connection, a timeout) is a failure. With the in-process server (local),
// the process's peak RSS is measured per level: the server's and the
// load generator's together. Each level is shown beside its anchor,
// checks/s: argon2id alone with params (the server's).
func (b *bencher) benchLogins(ctx context.Context, stdout io.Writer, levels []int, d time.Duration, user, pass string, params password.Params, local bool) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(stdout, "tokend bench: password-grant logins against %s, %v per level\n", b.base, d)
	fmt.Fprintln(tw, "clients\tchecks/s\tlogins\tlogins/s\tp50\tp99\tmax\trefused\tdropped\tunusable\tother\thealthz max\tpeak RSS\t")
	for _, n := range levels {
		anchor := checkRate(params)
		rss := "-"
		if local {
			resetPeakRSS()
		}
		r := b.runLogins(ctx, n, d, user, pass)
		if peak := peakRSS(); local && peak > 0 {
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

type loginResult struct {
	benchResult
	refused  int // 503 or 429 with Retry-After
	dropped  int // no answer: a transport error
	unusable int // a 200 whose refresh token did not rotate
	healthz  time.Duration
}

// runLogins drives n virtual clients for d.
func (b *bencher) runLogins(ctx context.Context, n int, d time.Duration, user, pass string) *loginResult {
	res := &loginResult{benchResult: benchResult{byStatus: map[int]int{}}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	probeCtx, stopProbe := context.WithDeadline(ctx, deadline)
	defer stopProbe()
	probe := make(chan time.Duration, 1)
	go func() { probe <- b.probeHealth(probeCtx) }()
	for range n {
		wg.Go(func() {
			var lat []time.Duration
			var refused, dropped, unusable int
			status := map[int]int{}
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				rt, code, retry, err := b.login(ctx, user, pass)
				switch {
				case err != nil:
					dropped++
				case code == http.StatusOK:
					lat = append(lat, time.Since(t0))
					if _, code, err := b.rotate(ctx, rt); err != nil || code != http.StatusOK {
						unusable++
					}
				case (code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests) && retry > 0:
					refused++
					wait := retry + time.Duration(rand.Int64N(int64(retry/2)+1))
					select {
					case <-time.After(min(wait, time.Until(deadline))):
					case <-ctx.Done():
					}
				default:
					status[code]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.lat = append(res.lat, lat...)
			res.ok += len(lat)
			res.refused += refused
			res.dropped += dropped
			res.unusable += unusable
			for c, k := range status {
				res.byStatus[c] += k
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.healthz = <-probe
	slices.Sort(res.lat)
	return res
}

// login runs the password grant and returns the refresh token, the status
// and the Retry-After of a refusal.
func (b *bencher) login(ctx context.Context, user, pass string) (string, int, time.Duration, error) {
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(b.id, b.secret)
	resp, err := b.hc.Do(req)
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
func (b *bencher) probeHealth(ctx context.Context) time.Duration {
	var worst time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		t0 := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/healthz", nil)
		if err == nil {
			var resp *http.Response
			if resp, err = b.hc.Do(req); err == nil {
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

// resetPeakRSS collects the garbage, returns free memory to the system and
// resets the kernel's peak-RSS mark (VmHWM) of this process, so that the
// next peakRSS is the next level's own. Where the reset is not available,
// peakRSS is the peak since the process started.
func resetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns this process's peak resident set in bytes, VmHWM from
// /proc/self/status, or 0 where there is none (not Linux).
func peakRSS() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}
