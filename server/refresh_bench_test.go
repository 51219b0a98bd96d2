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
	"time"

	"github.com/tokend/tokend/server"
)

// BenchmarkRefresh is one refresh_token grant through the handler, without
// the network: client authentication, a rotation in the memory store, an
// Ed25519-signed JWT. The throttle's cost per request is the difference
// between throttle=off (the anchor) and throttle=on; under_attack runs
// with the throttle's tables full of an attacker's failures and the
// client's account locked for every source but its own.
func BenchmarkRefresh(b *testing.B) {
	for _, bc := range refreshBenchCases {
		b.Run(bc.name, func(b *testing.B) {
			r := newRefresher(b, bc.mod, bc.attack)
			b.ReportAllocs()
			for b.Loop() {
				r.refresh(b)
			}
		})
	}
}

// BenchmarkRefreshPaired alternates, request by request, a refresh with
// the throttle off and one with it on (and which goes first), so that
// both see the same load on a busy machine; it reports each one's time
// and their ratio.
func BenchmarkRefreshPaired(b *testing.B) {
	off := newRefresher(b, refreshBenchCases[0].mod, false)
	on := newRefresher(b, nil, false)
	var tOff, tOn time.Duration
	n := 0
	for b.Loop() {
		first, second, t1, t2 := off, on, &tOff, &tOn
		if n%2 == 1 {
			first, second, t1, t2 = on, off, &tOn, &tOff
		}
		start := time.Now()
		first.refresh(b)
		mid := time.Now()
		second.refresh(b)
		*t1 += mid.Sub(start)
		*t2 += time.Since(mid)
		n++
	}
	b.ReportMetric(float64(tOff.Nanoseconds())/float64(n), "ns/off")
	b.ReportMetric(float64(tOn.Nanoseconds())/float64(n), "ns/on")
	b.ReportMetric(float64(tOn)/float64(tOff), "on/off")
}

var refreshBenchCases = []struct {
	name   string
	mod    func(*server.Config)
	attack bool
}{
	{"throttle=off", func(c *server.Config) { c.Throttle.Disabled = true }, false},
	{"throttle=on", nil, false},
	{"throttle=on,under_attack", nil, true},
}

// refresher rotates one family of the app's again and again.
type refresher struct {
	e  *env
	rt string
}

const benchHome = "192.0.2.1:40000"

func (r *refresher) serve(remote, body, id, secret string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
	req.RemoteAddr = remote
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	rec := httptest.NewRecorder()
	r.e.srv.ServeHTTP(rec, req)
	return rec
}

func (r *refresher) refresh(b *testing.B) {
	rec := r.serve(benchHome, "grant_type=refresh_token&refresh_token="+r.rt, appID, appSecret)
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	r.rt = out.RefreshToken
}

// newRefresher starts a server; with attack, an attacker has filled the
// throttle's tables with 30,000 wrong secrets of the app and as many of
// other clients, from random sources.
func newRefresher(b *testing.B, mod func(*server.Config), attack bool) *refresher {
	e := newEnv(b, mod)
	r := &refresher{e: e, rt: e.mint("bench")}
	if !attack {
		return r
	}
	// The app authenticated from home before the attack.
	if rec := r.serve(benchHome, "grant_type=client_credentials", appID, appSecret); rec.Code != http.StatusOK {
		b.Fatal(rec.Code)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 60_000 {
		remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}), 1).String()
		id := appID
		if i%2 == 1 {
			id = fmt.Sprint("client-", i)
		}
		r.serve(remote, "grant_type=client_credentials", id, "guess")
	}
	// A client secret has no account lock: the app is not locked out,
	// from a new source either.
	if rec := r.serve("198.51.100.1:1", "grant_type=client_credentials", appID, appSecret); rec.Code != http.StatusOK {
		b.Fatalf("the app from a new source: %d, want 200", rec.Code)
	}
	return r
}
