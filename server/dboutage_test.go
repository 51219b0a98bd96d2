package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis"
	"github.com/tokend/tokend/store/redis/redistest"
	"github.com/tokend/tokend/store/storetest"
)

// outageTimeout is Config.StoreTimeout in the outage tests: small, so
// that they run fast; what they assert is derived from it.
const outageTimeout = 200 * time.Millisecond

// TestDatabaseOutage: a server on PostgreSQL or Redis through a proxy
// that stalls the link (holds bytes: a partition) or cuts it, with
// Config.StoreTimeout 200ms. Refreshes, alone (on a connection of the
// pool) and many at once (more than the pool holds: on new connections),
// are answered 503 temporarily_unavailable with Retry-After within the
// timeout (and a little slack), /readyz is 503 while /healthz and the
// JWKS stay up, and a client that hangs up meanwhile is no server error.
// After the restore /readyz is 200 again and the refresh token presented
// during the outage rotates.
func TestDatabaseOutage(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T, p *storetest.Proxy) store.Store
	}{
		{"postgres", func(t *testing.T, p *storetest.Proxy) store.Store {
			u := strings.Replace(pgtest.ServerURL, "127.0.0.1:5432", p.Addr(), 1) + pgtest.Schema(t)
			st, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		}},
		{"redis", func(t *testing.T, p *storetest.Proxy) store.Store {
			u := strings.Replace(redistest.ServerURL, "127.0.0.1:6379", p.Addr(), 1)
			st, err := redis.Open(t.Context(), u, &redis.Options{Prefix: redistest.Prefix(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		}},
	}
	targets := map[string]string{"postgres": "127.0.0.1:5432", "redis": "127.0.0.1:6379"}
	for _, b := range backends {
		for _, mode := range []string{"stall", "cut"} {
			t.Run(b.name+"/"+mode, func(t *testing.T) {
				p := storetest.NewProxy(t, targets[b.name])
				testDatabaseOutage(t, b.open(t, p), p, mode == "stall")
			})
		}
	}
}

func testDatabaseOutage(t *testing.T, st store.Store, p *storetest.Proxy, stall bool) {
	ctx := t.Context()
	clk := clocktest.New(time.Now().UTC())
	// The signing keys' store is bounded as tokend serve bounds it.
	ks, err := keys.Load(ctx, store.WithTimeout(st, outageTimeout), "EdDSA", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, issuer := serve(t, server.Config{Store: st, StoreTimeout: outageTimeout, Signer: ks, Secret: testSecret, Now: clk.Now, Logger: logger}, nil)
	if err := st.CreateClient(ctx, store.Client{ID: appID, SecretHash: server.HashClientSecret(appSecret), Grants: []string{"refresh_token", "password"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, store.User{Name: "alice", PasswordHash: password.Hash("wonderland")}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, url: issuer, store: st, clock: clk, srv: srv}
	a := e.refresh(e.login().str("refresh_token"))
	if a.status != http.StatusOK {
		t.Fatalf("refresh before the outage: %d %v", a.status, a.body)
	}
	rt := a.str("refresh_token")
	get := func(path string) (int, time.Duration) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, issuer+path, nil)
		start := time.Now()
		return e.do(req).status, time.Since(start)
	}
	// Fill the pool.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { get("/readyz") })
	}
	wg.Wait()
	pooled := p.Open()

	if stall {
		p.Stall()
	} else {
		p.Cut()
	}
	limit := outageTimeout + storetest.DeadlineSlack
	unavailable := func(what string, a answer, took time.Duration) {
		t.Helper()
		if a.status != http.StatusServiceUnavailable || a.str("error") != "temporarily_unavailable" || a.header.Get("Retry-After") != "5" || took > limit {
			t.Errorf("%s during the outage: %d %v Retry-After %q after %v; want 503 temporarily_unavailable, Retry-After 5, within %v",
				what, a.status, a.body, a.header.Get("Retry-After"), took, limit)
		}
	}
	start := time.Now()
	a = e.refresh(rt)
	unavailable("a refresh alone", a, time.Since(start))
	n := pooled + 4
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			a := e.refresh(rt)
			unavailable("refresh "+string(rune('A'+i%26))+" of many at once", a, time.Since(start))
		})
	}
	wg.Wait()
	if s, took := get("/readyz"); s != http.StatusServiceUnavailable || took > limit {
		t.Errorf("/readyz during the outage: %d after %v; want 503 within %v", s, took, limit)
	}
	if s, _ := get("/healthz"); s != http.StatusOK {
		t.Errorf("/healthz during the outage: %d; want 200", s)
	}
	if s, took := get("/.well-known/jwks.json"); s != http.StatusOK || took > limit {
		t.Errorf("JWKS during the outage: %d after %v; want 200 within %v", s, took, limit)
	}

	// Through a stall, a client that gives up before the store's
	// deadline: its request is recorded as 499 client_closed_request, and
	// logged at debug level only. The server's handler may still be
	// running when the client has given up: wait for the metric.
	if stall {
		hctx, cancel := context.WithTimeout(ctx, outageTimeout/4)
		req, _ := http.NewRequestWithContext(hctx, http.MethodPost, issuer+"/oauth/token",
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(appID, appSecret)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("a request whose client gave up after %v was answered %d", outageTimeout/4, resp.StatusCode)
		}
		cancel()
		waitMetric(t, issuer, `tokend_request_failures_total{endpoint="token",error="client_closed_request"} 1`)
	}

	// After the restore, and once the last failure is older than the
	// Retry-After the server gave, the instance is ready again. (A
	// connection the outage broke may fail one more call: each poll is a
	// minute later on the server's clock.)
	p.Restore()
	rctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	polls := 1
	for clk.Advance(time.Minute); ; polls++ {
		s, _ := get("/readyz")
		if s == http.StatusOK {
			break
		}
		select {
		case <-rctx.Done():
			t.Fatalf("/readyz 10s after the restore: %d; want 200", s)
		case <-tick.C:
			clk.Advance(time.Minute)
		}
	}
	t.Logf("/readyz 200 at poll %d after the restore", polls)
	// A connection the cut broke may still be in the pool: its first use
	// fails (503), and the pool drops it. So a refresh goes through after
	// at most as many 503s as the pool holds connections.
	a = e.refresh(rt)
	for i := 0; a.status == http.StatusServiceUnavailable && i < pooled+n; i++ {
		a = e.refresh(rt)
	}
	if a.status != http.StatusOK || a.str("refresh_token") == "" {
		t.Fatalf("refresh after the restore: %d %v; want 200 with a new refresh token", a.status, a.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if m := metrics(t, issuer); strings.Contains(m, `error="server_error"`) {
		t.Errorf("server errors counted:\n%s", grepLines(m, "tokend_request_failures_total"))
	}
	if strings.Contains(logs.String(), "internal error") || stall && !strings.Contains(logs.String(), `level=DEBUG msg="client went away"`) {
		t.Errorf("logs: want no internal error, and the client that went away at debug level:\n%s", logs)
	}
}

// metrics returns the server's /metrics page.
func metrics(t *testing.T, issuer string) string {
	t.Helper()
	resp, err := http.Get(issuer + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitMetric polls /metrics until it has the line want, for at most 10s.
func waitMetric(t *testing.T, issuer, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		m := metrics(t, issuer)
		if strings.Contains(m, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/metrics lacks %s:\n%s", want, grepLines(m, "tokend_request_failures_total"))
		case <-tick.C:
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
