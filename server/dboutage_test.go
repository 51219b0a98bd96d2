package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/storetest"
)

// A server on PostgreSQL through a proxy that is cut: the token endpoint
// answers 503 temporarily_unavailable with Retry-After, quickly, /readyz
// is 503 while /healthz and the JWKS stay up; after the restore /readyz
// is 200 again and the refresh token presented during the outage rotates.
func TestDatabaseOutage(t *testing.T) {
	ctx := t.Context()
	p := storetest.NewProxy(t, "127.0.0.1:5432")
	st, err := postgres.Open(ctx, "postgres://postgres@"+p.Addr()+"/test?sslmode=disable"+pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clk := clocktest.New(time.Now().UTC())
	ks, err := keys.Load(ctx, st, "EdDSA", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv, issuer := serve(t, server.Config{Store: st, Signer: ks, Secret: testSecret, Now: clk.Now}, nil)
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

	get := func(path string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, issuer+path, nil)
		return e.do(req).status
	}

	p.Cut()
	start := time.Now()
	a = e.refresh(rt)
	took := time.Since(start)
	if a.status != http.StatusServiceUnavailable || a.str("error") != "temporarily_unavailable" || a.header.Get("Retry-After") == "" {
		t.Fatalf("refresh while cut: %d %v Retry-After %q; want 503 temporarily_unavailable with Retry-After", a.status, a.body, a.header.Get("Retry-After"))
	}
	if took > 3*time.Second {
		t.Fatalf("refresh while cut took %v; want an answer within 3s", took)
	}
	if s := get("/readyz"); s != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while cut: %d; want 503", s)
	}
	if s := get("/healthz"); s != http.StatusOK {
		t.Fatalf("/healthz while cut: %d; want 200", s)
	}
	if s := get("/.well-known/jwks.json"); s != http.StatusOK {
		t.Fatalf("JWKS while cut: %d; want 200", s)
	}

	// After the restore, and once the last failure is older than the
	// Retry-After the server gave, the instance is ready again.
	p.Restore()
	clk.Advance(time.Minute)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s := get("/readyz"); s != http.StatusOK; s = get("/readyz") {
		select {
		case <-rctx.Done():
			t.Fatalf("/readyz 10s after the restore: %d; want 200", s)
		case <-tick.C:
		}
	}
	if a := e.refresh(rt); a.status != http.StatusOK || a.str("refresh_token") == "" {
		t.Fatalf("refresh after the restore: %d %v; want 200 with a new refresh token", a.status, a.body)
	}
}
