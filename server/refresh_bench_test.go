package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/tokend/tokend/server"
)

// BenchmarkRefresh is one refresh_token grant through the handler, without
// the network: client authentication, a rotation in the memory store, an
// Ed25519-signed JWT. The throttle's cost per request is the difference
// between throttle=off (the anchor) and throttle=on; under_attack runs
// with the throttle's tables full of an attacker's failures and the
// client's account locked for every source but its own.
func BenchmarkRefresh(b *testing.B) {
	for _, bc := range []struct {
		name   string
		mod    func(*server.Config)
		attack bool
	}{
		{"throttle=off", func(c *server.Config) { c.Throttle.Disabled = true }, false},
		{"throttle=on", nil, false},
		{"throttle=on,under_attack", nil, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, bc.mod)
			rt := e.mint("bench")
			serve := func(remote, body, id, secret string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
				req.RemoteAddr = remote
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, secret)
				rec := httptest.NewRecorder()
				e.srv.ServeHTTP(rec, req)
				return rec
			}
			const home = "192.0.2.1:40000"
			if bc.attack {
				// The app authenticated from home before the attack.
				if rec := serve(home, "grant_type=client_credentials", appID, appSecret); rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				for i := range 60_000 {
					remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}), 1).String()
					id := appID
					if i%2 == 1 {
						id = fmt.Sprint("client-", i)
					}
					serve(remote, "grant_type=client_credentials", id, "guess")
				}
				if rec := serve("198.51.100.1:1", "grant_type=client_credentials", appID, appSecret); rec.Code != http.StatusTooManyRequests {
					b.Fatalf("the app from a new source: %d, want 429", rec.Code)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				rec := serve(home, "grant_type=refresh_token&refresh_token="+rt, appID, appSecret)
				var out struct {
					RefreshToken string `json:"refresh_token"`
				}
				if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
					b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
				}
				rt = out.RefreshToken
			}
		})
	}
}
