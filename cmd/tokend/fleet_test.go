package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store/storetest"
	"github.com/tokend/tokend/verify"
)

// The fleet: three `tokend serve` processes share one store, as several
// instances behind a load balancer do, once on PostgreSQL and once on
// Redis. The tests speak HTTP to the processes and use the admin CLI; see
// fleetenv_test.go.

const (
	stormClients = 64
	stormRounds  = 12
)

func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary against PostgreSQL and Redis")
	}
	tests := []struct {
		name string
		run  func(*testing.T, fleetStore)
	}{
		{"GraceReplay", testFleetGraceReplay},
		{"Revoke", testFleetRevoke},
		{"Storm", testFleetStorm},
		{"KillOne", testFleetKillOne},
		{"DatabaseOutage", testFleetDatabaseOutage},
		{"DatabaseStall", testFleetDatabaseStall},
		{"KeyRotation", testFleetKeyRotation},
	}
	for _, fs := range fleetStores {
		t.Run(fs.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, fs) })
			}
		})
	}
}

// wantInvalidGrant fails the test unless a is 400 invalid_grant.
func wantInvalidGrant(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
		t.Fatalf("%s: %v; want 400 invalid_grant", what, a)
	}
}

// A token refreshed through A and presented again through B within the
// grace window gets the same successor; presented again through C after
// it, it is reuse: invalid_grant, and the family is revoked on every
// instance.
func testFleetGraceReplay(t *testing.T, fs fleetStore) {
	const grace = time.Second
	u := fs.fresh(t)(fs.addr)
	f := newFleet(t, u, u, 3, grace)
	A, B, C := f.nodes[0], f.nodes[1], f.nodes[2]
	ctx := t.Context()

	rt0 := f.login(ctx, A).str("refresh_token")
	sent := time.Now()
	a := f.refresh(ctx, A, rt0)
	// The store judged the rotation at a time between sent and rotated,
	// on the instances' clock, which is this machine's.
	rotated := time.Now()
	rt1, at1 := a.str("refresh_token"), a.str("access_token")
	if a.status != http.StatusOK || rt1 == "" || rt1 == rt0 || at1 == "" {
		t.Fatalf("refresh through A: %v", a)
	}
	b := f.refresh(ctx, B, rt0)
	if took := time.Since(sent); took >= grace {
		t.Fatalf("the replay through B answered %v after the rotation began, not surely within the %v grace: this machine is too slow for the test", took, grace)
	}
	if b.status != http.StatusOK || b.str("refresh_token") != rt1 {
		t.Fatalf("the same token through B within grace: %v; want 200 with A's successor", b)
	}
	for _, nd := range f.nodes {
		if !f.active(ctx, nd, rt1) || !f.active(ctx, nd, at1) {
			t.Fatalf("%s: the successor or its access token is not active", nd.name)
		}
	}

	// The one real-time wait of these tests: the store's clock judges the
	// grace window, so only real time can end it. The timer fires at the
	// first instant the window has surely passed.
	timer := time.NewTimer(time.Until(rotated.Add(grace)))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	wantInvalidGrant(t, "the same token through C after grace", f.refresh(ctx, C, rt0))
	for _, nd := range f.nodes {
		wantInvalidGrant(t, "the successor through "+nd.name+" after the reuse", f.refresh(ctx, nd, rt1))
		if f.active(ctx, nd, rt1) || f.active(ctx, nd, at1) || f.active(ctx, nd, b.str("access_token")) {
			t.Fatalf("%s: a token of the revoked family is still active", nd.name)
		}
	}
}

// A family revoked (RFC 7009) through B is refused at once by A and C,
// whether the revocation named its refresh token or one of its access
// tokens.
func testFleetRevoke(t *testing.T, fs fleetStore) {
	u := fs.fresh(t)(fs.addr)
	f := newFleet(t, u, u, 3, 0)
	A, B, C := f.nodes[0], f.nodes[1], f.nodes[2]
	ctx := t.Context()

	for _, by := range []string{"refresh_token", "access_token"} {
		a := f.refresh(ctx, A, f.login(ctx, C).str("refresh_token"))
		rt, at := a.str("refresh_token"), a.str("access_token")
		if a.status != http.StatusOK || rt == "" || at == "" {
			t.Fatalf("refresh through A: %v", a)
		}
		for _, nd := range []*node{A, C} {
			if !f.active(ctx, nd, rt) || !f.active(ctx, nd, at) {
				t.Fatalf("%s: the family is not active before the revocation", nd.name)
			}
		}
		tok := rt
		if by == "access_token" {
			tok = at
		}
		if r := f.post(ctx, B, "/oauth/revoke", url.Values{"token": {tok}}); r.status != http.StatusOK {
			t.Fatalf("revoke by %s through B: %v", by, r)
		}
		for _, nd := range []*node{A, C, B} {
			if f.active(ctx, nd, at) || f.active(ctx, nd, rt) {
				t.Fatalf("revoked by %s through B: %s still reports the family's tokens active", by, nd.name)
			}
			wantInvalidGrant(t, "revoked by "+by+" through B, refresh through "+nd.name, f.refresh(ctx, nd, rt))
		}
	}
}

// 64 clients refresh round-robin over the three instances: every accepted
// request rotates exactly once, and no family is lost or revoked.
func testFleetStorm(t *testing.T, fs fleetStore) {
	u := fs.fresh(t)(fs.addr)
	f := newFleet(t, u, u, 3, 0)
	ctx := t.Context()
	s := newStorm(ctx, f, stormClients)
	s.run(ctx, stormRounds, stormHooks{})
	s.check(ctx, stormClients*stormRounds)
}

// SIGKILL of one instance in the middle of a storm: a client whose
// request died with it retries the same token on another instance (within
// grace: the same successor if the rotation was committed, a rotation if
// not), and no family is lost.
func testFleetKillOne(t *testing.T, fs fleetStore) {
	u := fs.fresh(t)(fs.addr)
	f := newFleet(t, u, u, 3, 0)
	ctx := t.Context()
	s := newStorm(ctx, f, stormClients)
	s.run(ctx, stormRounds, stormHooks{after: func(total int64) {
		if total == stormClients*stormRounds/2 {
			s.kill(1)
		}
	}})
	if a := f.get(ctx, f.nodes[1], "/healthz"); a.err == nil {
		t.Fatalf("B answers after SIGKILL: %v", a)
	}
	s.check(ctx, stormClients*stormRounds)
	t.Logf("%d requests retried on another instance after the kill", s.retried.Load())
}

// A database outage in the middle of a storm, through a proxy between the
// instances and the database that is cut: requests answer 503
// temporarily_unavailable with Retry-After, quickly; /healthz, the JWKS
// and the metadata are served, /readyz is 503. After the restore every
// instance is ready again and every family rotates on.
func testFleetDatabaseOutage(t *testing.T, fs fleetStore) {
	at := fs.fresh(t)
	p := storetest.NewProxy(t, fs.addr)
	f := newFleet(t, at(fs.addr), at(p.Addr()), 3, 0)
	ctx := t.Context()
	s := newStorm(ctx, f, stormClients)
	probe, err := f.mint(ctx, f.nodes[0], "probe")
	if err != nil {
		t.Fatal(err)
	}

	restored := make(chan struct{})
	// idle receives one event per client that is waiting for the restore
	// or done: at most one each before the restore, and one more after.
	idle := make(chan struct{}, 2*stormClients)
	unavailable := func(ctx context.Context, a answer) bool {
		if !unavailableAnswer(t, "a storm refresh", a) {
			return false
		}
		s.unavailable.Add(1)
		select {
		case <-restored:
			// A connection the cut broke and the pool still held:
			// the client tries again a little later.
			pace := time.NewTimer(20 * time.Millisecond)
			defer pace.Stop()
			select {
			case <-pace.C:
			case <-ctx.Done():
				return false
			}
			return true
		default:
		}
		idle <- struct{}{}
		select {
		case <-restored:
			return true
		case <-ctx.Done():
			return false
		}
	}
	done := make(chan struct{})
	// If the test stops early, the clients stop too before it returns.
	sctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-done }()
	go func() {
		defer close(done)
		s.run(sctx, stormRounds, stormHooks{
			fail: unavailable,
			after: func(total int64) {
				if total == stormClients*stormRounds/2 {
					p.Cut()
				}
			},
			done: func() { idle <- struct{}{} },
		})
	}()
	// Cut at half the rotations, so some client is still to rotate: wait
	// until every client waits for the restore or is done.
	for range stormClients {
		select {
		case <-idle:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if s.unavailable.Load() == 0 {
		t.Fatal("no request answered 503 after the cut")
	}

	// Each instance is asked in parallel: a store call that fails may
	// take a while (a Redis client retries).
	var wg sync.WaitGroup
	for _, nd := range f.nodes {
		wg.Go(func() { checkCut(t, f, nd, probe) })
	}
	wg.Wait()

	p.Restore()
	restoredAt := time.Now()
	for _, nd := range f.nodes {
		wg.Go(func() { f.waitReady(ctx, nd, 20*time.Second) })
	}
	wg.Wait()
	t.Logf("every instance ready %v after the restore", time.Since(restoredAt).Round(time.Millisecond))
	close(restored)
	<-done
	if a := f.refresh(ctx, f.nodes[2], probe); a.status != http.StatusOK {
		t.Fatalf("the probe's refresh after the restore: %v", a)
	}
	s.check(ctx, stormClients*stormRounds)
	t.Logf("%d answers 503 during the outage", s.unavailable.Load())
}

// checkCut checks what instance nd answers while its store is cut off:
// 503 to a refresh (of probe) and a login, 503 on /readyz; 200 on
// /healthz, the JWKS and the metadata.
func checkCut(t *testing.T, f *fleet, nd *node, probe string) {
	ctx := t.Context()
	unavailableAnswer(t, nd.name+": refresh while cut", f.refresh(ctx, nd, probe))
	unavailableAnswer(t, nd.name+": login while cut", f.post(ctx, nd, "/oauth/token",
		url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}}))
	if a := f.get(ctx, nd, "/readyz"); a.status != http.StatusServiceUnavailable {
		t.Errorf("%s: /readyz while cut: %v; want 503", nd.name, a)
	}
	if a := f.get(ctx, nd, "/healthz"); a.status != http.StatusOK {
		t.Errorf("%s: /healthz while cut: %v; want 200", nd.name, a)
	}
	if a := f.get(ctx, nd, "/.well-known/jwks.json"); a.status != http.StatusOK || len(jwksKids(a)) == 0 {
		t.Errorf("%s: JWKS while cut: %v; want 200 with keys", nd.name, a)
	}
	if a := f.get(ctx, nd, "/.well-known/oauth-authorization-server"); a.status != http.StatusOK || a.str("issuer") != fleetIssuer {
		t.Errorf("%s: metadata while cut: %v; want 200 naming %s", nd.name, a, fleetIssuer)
	}
}

// unavailableAnswer reports (with t.Errorf) unless a is 503
// temporarily_unavailable with a Retry-After in seconds, answered before
// the client's timeout.
func unavailableAnswer(t *testing.T, what string, a answer) bool {
	t.Helper()
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if a.err != nil || a.status != http.StatusServiceUnavailable || a.str("error") != "temporarily_unavailable" || err != nil || retry <= 0 ||
		a.took >= fleetRequestTimeout {
		t.Errorf("%s: %v, Retry-After %q, after %v; want 503 temporarily_unavailable with Retry-After within %v",
			what, a, a.header.Get("Retry-After"), a.took, fleetRequestTimeout)
		return false
	}
	return true
}

// jwksKids are the kids of a JWKS answer.
func jwksKids(a answer) []string {
	keys, _ := a.body["keys"].([]any)
	var kids []string
	for _, k := range keys {
		m, _ := k.(map[string]any)
		if kid, ok := m["kid"].(string); ok {
			kids = append(kids, kid)
		}
	}
	return kids
}

// `tokend keys rotate` against the store: every instance publishes the
// new key before any instance signs with it, so the first token it signs
// verifies through each instance's JWKS, as do the old key's tokens.
func testFleetKeyRotation(t *testing.T, fs fleetStore) {
	u := fs.fresh(t)(fs.addr)
	f := newFleet(t, u, u, 3, 0)
	ctx := t.Context()
	access := func(nd *node) string {
		t.Helper()
		a := f.post(ctx, nd, "/oauth/token", url.Values{"grant_type": {"client_credentials"}})
		if a.status != http.StatusOK || a.str("access_token") == "" {
			t.Fatalf("client_credentials on %s: %v", nd.name, a)
		}
		return a.str("access_token")
	}
	// A resource server per instance, each reading that instance's JWKS,
	// primed with the old key before the rotation.
	vs := make([]*verify.Verifier, len(f.nodes))
	old := access(f.nodes[0])
	oldKid := verify.KeyID(old)
	for i, nd := range f.nodes {
		vs[i] = verify.New(fleetIssuer, &verify.Options{JWKSURL: nd.base + "/.well-known/jwks.json",
			MinRefresh: jwksMaxAge, HTTPClient: f.hc})
		if _, err := vs[i].Verify(ctx, old); err != nil {
			t.Fatalf("the old key's token through %s's JWKS: %v", nd.name, err)
		}
	}
	verifyAll := func(tok, kid string) {
		t.Helper()
		for i, v := range vs {
			if c, err := v.Verify(ctx, tok); err != nil || c.KeyID != kid {
				t.Fatalf("a token of key %s through %s's JWKS: %v, %v", kid, f.nodes[i].name, c, err)
			}
		}
	}

	code, out, errOut := runCmd(t, "", "keys", "rotate", "--key-reload", keyReload.String(), "--jwks-max-age", jwksMaxAge.String(), "--store", f.store)
	_, rest, ok := strings.Cut(out, "new signing key ")
	newKid, _, _ := strings.Cut(rest, " ")
	_, rest, _ = strings.Cut(rest, "signs from ")
	stamp, _, _ := strings.Cut(rest, " ")
	notBefore, err := time.Parse(time.RFC3339, stamp)
	if code != 0 || !ok || newKid == "" || newKid == oldKid || err != nil {
		t.Fatalf("keys rotate: exit %d, %q %q; want a new kid and when it signs", code, out, errOut)
	}

	// Poll every instance until each has signed with the new key. Each
	// round reads the three JWKS first, then asks each instance for a
	// token: when a token first names the new key, the JWKS read before
	// it must publish it on every instance.
	signed := make([]bool, len(f.nodes))
	first := true
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := 0; n < len(f.nodes); {
		var unpublished []string
		for _, nd := range f.nodes {
			a := f.get(ctx, nd, "/.well-known/jwks.json")
			if a.status != http.StatusOK || a.header.Get("Cache-Control") != "public, max-age=1" {
				t.Fatalf("JWKS of %s: %v, Cache-Control %q; want 200, max-age=1", nd.name, a, a.header.Get("Cache-Control"))
			}
			if kids := jwksKids(a); !slices.Contains(kids, newKid) {
				unpublished = append(unpublished, nd.name)
			} else if !slices.Contains(kids, oldKid) {
				t.Fatalf("JWKS of %s dropped the old key %s: %v", nd.name, oldKid, kids)
			}
		}
		for i, nd := range f.nodes {
			tok := access(nd)
			switch kid := verify.KeyID(tok); kid {
			case oldKid:
				continue
			case newKid:
			default:
				t.Fatalf("%s signed with key %q, neither the old %s nor the new %s", nd.name, kid, oldKid, newKid)
			}
			if first {
				if now := time.Now(); now.Before(notBefore) {
					t.Fatalf("%s signed with the new key at %v, before its NotBefore %v", nd.name, now, notBefore)
				}
				if unpublished != nil {
					t.Fatalf("%s signed with the new key %s while the JWKS of %v did not publish it", nd.name, newKid, unpublished)
				}
				first = false
			}
			verifyAll(tok, newKid)
			if !signed[i] {
				signed[i] = true
				n++
			}
		}
		select {
		case <-tick.C:
		case <-pctx.Done():
			t.Fatalf("instances signing with the new key %s 10s after the rotation: %v", newKid, signed)
		}
	}
	verifyAll(old, oldKid)
}
