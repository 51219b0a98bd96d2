package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// No one locks a legitimate client or user out of a fleet: two `tokend
// serve` processes behind a trusted proxy (loopback) on one PostgreSQL,
// then one Redis. Guesses from 24 addresses spread over both instances
// never refuse the right client secret, from its usual address or a new
// one, on either instance or after a restart; they lock the user's
// account, but not from where she has logged in before, on either
// instance or after a restart; and refresh tokens that cannot work are
// invalid_grant however many came before.
func TestFleetNoLockout(t *testing.T) {
	for _, fs := range fleetStores {
		t.Run(fs.name, func(t *testing.T) {
			u := fs.fresh(t)(fs.addr)
			f := newFleet(t, u, u, 2, 0, "--trusted-proxies", "127.0.0.1")
			ctx := t.Context()
			t.Run("ClientSecret", func(t *testing.T) {
				cc := func(i int, from, secret string) int {
					return f.postAs(ctx, f.nodes[i], from, fleetClient, secret, url.Values{"grant_type": {"client_credentials"}}).status
				}
				if got := cc(0, "10.1.1.2", fleetSecret); got != http.StatusOK {
					t.Fatalf("first: %d", got)
				}
				for i := range 24 {
					if got := cc(i%2, fmt.Sprintf("203.0.113.%d", i), "wrong"); got != http.StatusUnauthorized {
						t.Fatalf("guess %d: %d", i, got)
					}
				}
				check := func(when string) {
					t.Helper()
					for i := range f.nodes {
						for _, from := range []string{"10.1.1.2", "10.1.1.3"} {
							if got := cc(i, from, fleetSecret); got != http.StatusOK {
								t.Fatalf("%s: the right secret from %s on %s: %d", when, from, f.nodes[i].name, got)
							}
						}
					}
				}
				check("after the guesses")
				f.restart(0)
				if got := cc(0, "203.0.113.99", "wrong"); got != http.StatusUnauthorized {
					t.Fatalf("a guess after the restart: %d", got)
				}
				check("after a restart")
			})
			t.Run("Password", func(t *testing.T) {
				login := func(i int, from, pw string) int {
					return f.postAs(ctx, f.nodes[i], from, fleetClient, fleetSecret,
						url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pw}}).status
				}
				if got := login(0, "10.1.1.2", "wonderland"); got != http.StatusOK {
					t.Fatalf("first: %d", got)
				}
				for i := range 24 {
					if got := login(i%2, fmt.Sprintf("198.51.100.%d", i), "guess"); got != http.StatusBadRequest && got != http.StatusTooManyRequests {
						t.Fatalf("guess %d: %d", i, got)
					}
				}
				for i := range f.nodes {
					if got := login(i, "198.51.100.200", "wonderland"); got != http.StatusTooManyRequests {
						t.Fatalf("a new source on %s: %d, want 429 (the account is locked)", f.nodes[i].name, got)
					}
					if got := login(i, "10.1.1.2", "wonderland"); got != http.StatusOK {
						t.Fatalf("alice from home on %s: %d", f.nodes[i].name, got)
					}
				}
				f.restart(1)
				login(1, "198.51.100.201", "guess") // learns the fleet's lock
				if got := login(1, "198.51.100.202", "wonderland"); got != http.StatusTooManyRequests {
					t.Fatalf("a new source after the restart: %d, want 429", got)
				}
				if got := login(1, "10.1.1.2", "wonderland"); got != http.StatusOK {
					t.Fatalf("alice from home after the restart: %d", got)
				}
			})
			t.Run("DeadRefreshTokens", func(t *testing.T) {
				// alice's account is locked; she logs in from home.
				rt := f.postAs(ctx, f.nodes[0], "10.1.1.2", fleetClient, fleetSecret,
					url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}}).str("refresh_token")
				if a := f.post(ctx, f.nodes[1], "/oauth/revoke", url.Values{"token": {rt}}); a.status != http.StatusOK {
					t.Fatalf("revoke: %v", a)
				}
				for i := range 60 {
					tok := rt
					if i%2 == 1 {
						tok = "rt2_" + strings.Repeat("A", 96)
					}
					wantInvalidGrant(t, fmt.Sprintf("dead token %d", i), f.refresh(ctx, f.nodes[i%2], tok))
				}
			})
		})
	}
}

// postAs sends a form to path on nd from the address from (forwarded by
// the trusted loopback proxy), authenticated as id and secret.
func (f *fleet) postAs(ctx context.Context, nd *node, from, id, secret string, form url.Values) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, nd.base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", from)
	req.SetBasicAuth(id, secret)
	return f.do(req)
}
