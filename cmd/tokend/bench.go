package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
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

	"github.com/spf13/cobra"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// newBenchCmd is the load generator: virtual clients, each holding its
// own refresh-token family, rotate it again and again through real HTTP on
// loopback; or, with --grant password, log in again and again with the
// password grant (see benchLogins).
func newBenchCmd(cio *cmdIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "load-test refresh-token rotation or password logins",
		Long: `Load-test refresh-token rotation (or, with --grant password, logins)
through real HTTP: against an in-process server on loopback by default,
or a running one with --target.

With --target, the server needs a client that may mint and refresh (and
use the password grant, for --grant password), and its secret:

  tokend client create --id bench --grant refresh_token,password --mint
  tokend bench --target http://127.0.0.1:8080 --client-id bench --client-secret SECRET`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	storeURL := fs.String("store", "memory:", "store of the in-process server: memory: or sqlite:///path.db")
	target := fs.String("target", "", "base URL of a running server instead of an in-process one; several, comma-separated, take the requests in turn (a round-robin load balancer)")
	instances := fs.Int("instances", 1, "in-process servers, each with its own store handle (connection pool), taking the requests in turn")
	clientID := fs.String("client-id", "bench", "with --target: a client that may mint and refresh (and log in, for --grant password)")
	clientSecret := fs.String("client-secret", "", "with --target: its secret (required)")
	levels := fs.String("clients", "1,4,16,64", "comma-separated numbers of concurrent virtual clients")
	duration := fs.Duration("duration", 5*time.Second, "how long each level runs")
	grant := fs.String("grant", "refresh_token", "what to load: refresh_token (rotations) or password (logins)")
	username := fs.String("username", benchUser, "with --target and --grant password: the user who logs in")
	pass := fs.String("password", benchPassword, "with --target and --grant password: the user's password")
	argon2 := fs.String("argon2-params", defaultSettings().Argon2Params, "argon2id parameters of the in-process server's user; with --target, the server's (for the anchor of --grant password)")
	throttle := fs.String("throttle", "", "the in-process server's failure throttle: on, off, or a list (off,on) to measure each at every level, every other level in reverse order (default: on for rotations; off for logins, which it would mostly answer 429 from one address before they reach the hashing)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return bench(cmd, cio.stdout, *storeURL, *target, *clientID, *clientSecret, *levels, *duration, *grant, *username, *pass, *argon2, *throttle, *instances)
	}
	return cmd
}

func bench(cmd *cobra.Command, stdout io.Writer, storeURL, target, clientID, clientSecret, levels string, duration time.Duration,
	grant, username, pass, argon2, throttle string, instances int) error {
	ctx := cmd.Context()
	if target != "" && clientSecret == "" {
		return usageErrorf("--target needs --client-id and --client-secret of a client that may mint (tokend client create --id bench --grant refresh_token,password --mint)")
	}
	if target != "" && cmd.Flags().Changed("store") {
		return usageErrorf("--store is the in-process server's: with --target, the server's own store is used")
	}
	if duration <= 0 {
		return usageErrorf("--duration must be positive, such as 5s, not %s", duration)
	}
	if grant != "refresh_token" && grant != "password" {
		return usageErrorf("--grant must be refresh_token or password, not %q", grant)
	}
	if throttle == "" {
		throttle = "on"
		if grant == "password" && target == "" {
			throttle = "off"
		}
	}
	var modes []string
	for _, m := range splitList(throttle) {
		if m != "on" && m != "off" {
			return usageErrorf("--throttle wants on, off or a list of them, not %q", m)
		}
		modes = append(modes, m)
	}
	if len(modes) == 0 || target != "" && throttle != "on" || grant == "password" && len(modes) > 1 {
		return usageErrorf("--throttle wants on and/or off (one of them for logins), and only for the in-process server")
	}
	if instances < 1 || instances > 16 || instances > 1 && (target != "" || len(modes) > 1 || grant == "password") {
		return usageErrorf("--instances wants 1 to 16 in-process servers, for rotations with one --throttle mode (with --target, list the servers instead)")
	}
	var ns []int
	for _, f := range splitList(levels) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 4096 {
			return usageErrorf("--clients wants numbers from 1 to 4096, such as 1,4,16,64, not %q", f)
		}
		ns = append(ns, n)
	}
	params, err := password.ParseParams(argon2)
	if err != nil {
		return usageErrorf("--argon2-params: %w", err)
	}
	// groups[i] are the servers that take the requests of run i in turn.
	groups, id, secret := [][]string{splitList(target)}, clientID, clientSecret
	if target == "" {
		stop, urls, err := benchServer(ctx, storeURL, params, modes, instances)
		if err != nil {
			return err
		}
		defer stop()
		groups, id, secret = urls, "bench", benchSecret
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	if grant == "password" {
		b := newBencher(hc, groups[0][:1], id, secret)
		return b.benchLogins(ctx, stdout, ns, duration, username, pass, params, target == "")
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	var all []string
	for _, g := range groups {
		all = append(all, g...)
	}
	against := strings.Join(all, " and ") + " (in-process, store " + redacted(storeURL) + ")"
	if target != "" {
		against = target
	}
	fmt.Fprintf(stdout, "tokend bench: refresh_token rotations against %s, %v per level\n", against, duration)
	fmt.Fprintln(tw, "clients\tinstances\tthrottle\trotations\trotations/s\tp50\tp99\tmax\terrors\t")
	for l, n := range ns {
		for k := range groups {
			i := k
			if l%2 == 1 { // every other level in reverse, so that drift hits every mode alike
				i = len(groups) - 1 - k
			}
			r, err := newBencher(hc, groups[i], id, secret).run(ctx, n, duration)
			if err != nil {
				return benchHint(err, target, id)
			}
			mode := modes[min(i, len(modes)-1)]
			fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", n, len(groups[i]), mode, r.ok, float64(r.ok)/r.elapsed.Seconds(),
				pct(r.lat, 0.50), pct(r.lat, 0.99), pct(r.lat, 1), r.errors())
		}
	}
	return tw.Flush()
}

// errUnauthorized is a mint or login the target refused for the client.
var errUnauthorized = errors.New("401: the target does not accept the client")

// benchHint adds to err, if the target refused the client, what client
// bench needs.
func benchHint(err error, target, id string) error {
	if target != "" && errors.Is(err, errUnauthorized) {
		return fmt.Errorf("%w\n--target needs a client that may mint and refresh: check --client-id %s and --client-secret, or create one with\n  tokend client create --id %s --grant refresh_token,password --mint", err, id, id)
	}
	if target != "" && errors.Is(err, errForbidden) {
		return fmt.Errorf("%w\n--target needs a client with --mint and the refresh_token grant:\n  tokend client delete %s && tokend client create --id %s --grant refresh_token,password --mint", err, id, id)
	}
	return err
}

// errForbidden is a mint the target refused because the client may not
// mint.
var errForbidden = errors.New("the client may not mint")

// The in-process server's client and user.
const (
	benchSecret   = "bench-secret-for-the-in-process-server"
	benchUser     = "bench"
	benchPassword = "bench-password"
)

// benchServer starts in-process servers on loopback on one store: for
// each throttle mode ("on": serve's default configuration; "off": the
// throttle disabled), a group of instances servers, each with its own
// store handle (its own connection pool or file handle; memory: shares
// the one store) and signing-key set, as separate processes would have.
// They have serve's default settings (argon2id parameters: params) and
// HTTP timeouts, a client that may mint, refresh and log in, and the user
// benchUser.
func benchServer(ctx context.Context, storeURL string, params password.Params, modes []string, instances int) (stop func(), groups [][]string, err error) {
	st, err := openStore(ctx, storeURL, store.DefaultTimeout)
	if err != nil {
		return nil, nil, err
	}
	var servers []*http.Server
	closers := []func() error{st.Close}
	stop = func() {
		for _, hs := range servers {
			_ = hs.Close()
		}
		for _, c := range closers {
			_ = c()
		}
	}
	fail := func(err error) (func(), [][]string, error) {
		stop()
		return nil, nil, err
	}
	if _, err := keys.Load(ctx, st, "EdDSA", time.Hour, time.Now()); err != nil {
		return fail(err)
	}
	_, _ = st.DeleteClient(ctx, "bench", time.Now())
	if err := st.CreateClient(ctx, store.Client{ID: "bench", SecretHash: server.HashClientSecret(benchSecret),
		Grants: []string{"refresh_token", "password"}, Mint: true, CreatedAt: time.Now()}); err != nil {
		return fail(err)
	}
	defaults := defaultSettings()
	defaults.Argon2Params = params.String()
	var cfg server.Config
	if err := defaults.applyHashing(&cfg); err != nil {
		return fail(err)
	}
	hash, err := cfg.PasswordParams.Hash(benchPassword)
	if err == nil {
		_, _ = st.DeleteUser(ctx, benchUser, time.Now())
		err = st.CreateUser(ctx, store.User{Name: benchUser, PasswordHash: hash, CreatedAt: time.Now()})
	}
	if err != nil {
		return fail(err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	for _, mode := range modes {
		var group []string
		for i := range instances {
			handle := st
			if i > 0 && !strings.HasPrefix(storeURL, "memory:") {
				if handle, err = openStore(ctx, storeURL, store.DefaultTimeout); err != nil {
					return fail(err)
				}
				closers = append(closers, handle.Close)
			}
			ks, err := keys.Load(ctx, handle, "EdDSA", time.Hour, time.Now())
			if err != nil {
				return fail(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fail(err)
			}
			c := cfg
			c.Store, c.Signer, c.Secret, c.Issuer = handle, ks, secret, "http://"+ln.Addr().String()
			c.Throttle = server.Throttle{Disabled: mode == "off"}
			srv, err := server.New(c)
			if err != nil {
				ln.Close()
				return fail(err)
			}
			hs := newHTTPServer(srv, slog.New(slog.DiscardHandler))
			servers = append(servers, hs)
			go func() { _ = hs.Serve(ln) }()
			group = append(group, "http://"+ln.Addr().String())
		}
		groups = append(groups, group)
	}
	return stop, groups, nil
}

// bencher drives one run against bases, which take the requests in turn.
type bencher struct {
	hc         *http.Client
	base       string // bases[0]: mints and logins
	bases      []string
	id, secret string
}

func newBencher(hc *http.Client, bases []string, id, secret string) *bencher {
	for i, b := range bases {
		bases[i] = strings.TrimRight(b, "/")
	}
	return &bencher{hc: hc, base: bases[0], bases: bases, id: id, secret: secret}
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
			for k := i; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
				t0 := time.Now()
				next, code, err := b.rotateAt(ctx, b.bases[k%len(b.bases)], rt)
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
	switch {
	case code == http.StatusUnauthorized:
		return "", fmt.Errorf("mint answered %d: %w", code, errUnauthorized)
	case code == http.StatusForbidden:
		return "", fmt.Errorf("mint answered %d: %w", code, errForbidden)
	case code != http.StatusOK || out.RefreshToken == "":
		return "", fmt.Errorf("mint answered %d", code)
	}
	return out.RefreshToken, nil
}

// rotate refreshes rt through b.base.
func (b *bencher) rotate(ctx context.Context, rt string) (string, int, error) {
	return b.rotateAt(ctx, b.base, rt)
}

// rotateAt refreshes rt through the server at base.
func (b *bencher) rotateAt(ctx context.Context, base, rt string) (string, int, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
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
