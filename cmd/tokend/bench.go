package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// cmdBench is the load generator: virtual clients, each holding its own
// refresh-token family, rotate it again and again through real HTTP on
// loopback; or, with --grant password, log in again and again with the
// password grant (see benchLogins).
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeURL := fs.String("store", "memory:", "store of the in-process server: memory: or sqlite:///path.db")
	target := fs.String("target", "", "base URL of a running server instead of an in-process one")
	clientID := fs.String("client-id", "bench", "with --target: a client that may mint and refresh (and log in, for --grant password)")
	clientSecret := fs.String("client-secret", "", "with --target: its secret")
	levels := fs.String("clients", "1,4,16,64", "comma-separated numbers of concurrent virtual clients")
	duration := fs.Duration("duration", 5*time.Second, "how long each level runs")
	grant := fs.String("grant", "refresh_token", "what to load: refresh_token (rotations) or password (logins)")
	username := fs.String("username", benchUser, "with --target and --grant password: the user who logs in")
	pass := fs.String("password", benchPassword, "with --target and --grant password: the user's password")
	argon2 := fs.String("argon2-params", defaultSettings().Argon2Params, "argon2id parameters of the in-process server's user; with --target, the server's (for the anchor of --grant password)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *grant != "refresh_token" && *grant != "password" {
		return usageError{fmt.Errorf("bench: bad --grant %q", *grant)}
	}
	var ns []int
	for _, f := range splitList(*levels) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 4096 {
			return usageError{fmt.Errorf("bench: bad --clients value %q", f)}
		}
		ns = append(ns, n)
	}
	params, err := password.ParseParams(*argon2)
	if err != nil {
		return usageError{fmt.Errorf("bench: --argon2-params: %w", err)}
	}
	base, id, secret := *target, *clientID, *clientSecret
	if base == "" {
		stop, u, err := benchServer(ctx, *storeURL, params)
		if err != nil {
			return err
		}
		defer stop()
		base, id, secret = u, "bench", benchSecret
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	b := &bencher{hc: hc, base: strings.TrimRight(base, "/"), id: id, secret: secret}
	if *grant == "password" {
		return b.benchLogins(ctx, stdout, ns, *duration, *username, *pass, params, *target == "")
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(stdout, "tokend bench: refresh_token rotations against %s (%s), %v per level\n", b.base, *storeURL, *duration)
	fmt.Fprintln(tw, "clients\trotations\trotations/s\tp50\tp99\tmax\terrors\t")
	for _, n := range ns {
		r, err := b.run(ctx, n, *duration)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", n, r.ok, float64(r.ok)/r.elapsed.Seconds(),
			pct(r.lat, 0.50), pct(r.lat, 0.99), pct(r.lat, 1), r.errors())
	}
	return tw.Flush()
}

// The in-process server's client and user.
const (
	benchSecret   = "bench-secret-for-the-in-process-server"
	benchUser     = "bench"
	benchPassword = "bench-password"
)

// benchServer starts an in-process server on loopback with serve's default
// settings (rate limit aside: none; argon2id parameters: params) and
// serve's HTTP timeouts, a client that may mint, refresh and log in, and
// the user benchUser.
func benchServer(ctx context.Context, storeURL string, params password.Params) (stop func(), baseURL string, err error) {
	st, err := openStore(ctx, storeURL)
	if err != nil {
		return nil, "", err
	}
	ks, err := keys.Load(ctx, st, "EdDSA", time.Hour, time.Now())
	if err != nil {
		st.Close()
		return nil, "", err
	}
	_, _ = st.DeleteClient(ctx, "bench", time.Now())
	if err := st.CreateClient(ctx, store.Client{ID: "bench", SecretHash: server.HashClientSecret(benchSecret),
		Grants: []string{"refresh_token", "password"}, Mint: true, CreatedAt: time.Now()}); err != nil {
		st.Close()
		return nil, "", err
	}
	defaults := defaultSettings()
	defaults.Argon2Params = params.String()
	var cfg server.Config
	if err := defaults.applyHashing(&cfg); err != nil {
		st.Close()
		return nil, "", err
	}
	hash, err := cfg.PasswordParams.Hash(benchPassword)
	if err == nil {
		_, _ = st.DeleteUser(ctx, benchUser, time.Now())
		err = st.CreateUser(ctx, store.User{Name: benchUser, PasswordHash: hash, CreatedAt: time.Now()})
	}
	if err != nil {
		st.Close()
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, "", err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cfg.Store, cfg.Signer, cfg.Secret, cfg.Issuer = st, ks, secret, "http://"+ln.Addr().String()
	srv, err := server.New(cfg)
	if err != nil {
		st.Close()
		return nil, "", err
	}
	hs := newHTTPServer(srv, slog.New(slog.DiscardHandler))
	go func() { _ = hs.Serve(ln) }()
	return func() { _ = hs.Close(); st.Close() }, "http://" + ln.Addr().String(), nil
}

type bencher struct {
	hc               *http.Client
	base, id, secret string
}

type benchResult struct {
	ok       int
	elapsed  time.Duration
	lat      []time.Duration
	byStatus map[int]int
	lost     int // families that could not continue (their token was rejected)
}

func (r *benchResult) errors() string {
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

func pct(lat []time.Duration, p float64) string {
	if len(lat) == 0 {
		return "-"
	}
	i := int(float64(len(lat)-1) * p)
	return lat[i].Round(10 * time.Microsecond).String()
}

// run drives n virtual clients for d and returns what they measured.
func (b *bencher) run(ctx context.Context, n int, d time.Duration) (*benchResult, error) {
	tokens := make([]string, n)
	for i := range n {
		rt, err := b.mint(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("bench: start family %d: %w", i, err)
		}
		tokens[i] = rt
	}
	res := &benchResult{byStatus: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := range n {
		wg.Go(func() {
			var lat []time.Duration
			status := map[int]int{}
			rt := tokens[i]
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				next, code, err := b.rotate(ctx, rt)
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
			mu.Lock()
			defer mu.Unlock()
			res.lat = append(res.lat, lat...)
			for c, k := range status {
				res.byStatus[c] += k
				if c == http.StatusBadRequest {
					res.lost++
				}
			}
			res.ok += len(lat) - sumValues(status)
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res, nil
}

func sumValues(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (b *bencher) mint(ctx context.Context, i int) (string, error) {
	body := fmt.Sprintf(`{"subject":"bench-%d","force":true}`, i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/v1/tokens", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(b.id, b.secret)
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	code, err := b.do(req, &out)
	if err != nil {
		return "", err
	}
	if code != http.StatusOK || out.RefreshToken == "" {
		return "", fmt.Errorf("mint answered %d", code)
	}
	return out.RefreshToken, nil
}

func (b *bencher) rotate(ctx context.Context, rt string) (string, int, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(b.id, b.secret)
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	code, err := b.do(req, &out)
	return out.RefreshToken, code, err
}

func (b *bencher) do(req *http.Request, out any) (int, error) {
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(out); err != nil {
			return resp.StatusCode, errors.New("malformed answer")
		}
	}
	return resp.StatusCode, nil
}
