package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

func TestPasswordGrantAndRotation(t *testing.T) {
	e := newEnv(t, nil)
	a := e.login()
	rt := a.str("refresh_token")
	if !strings.HasPrefix(rt, "rt2_") || len(rt) != 100 || a.str("access_token") == "" || a.str("token_type") != "Bearer" || a.body["expires_in"] != float64(900) {
		t.Fatalf("login answer %v", a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", a.header.Get("Cache-Control"))
	}
	b := e.refresh(rt)
	if b.status != http.StatusOK || b.str("refresh_token") == rt || b.str("scope") != "read write" {
		t.Fatalf("refresh: %d %v", b.status, b.body)
	}
	// Narrowing is allowed, widening is not.
	c := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {b.str("refresh_token")}, "scope": {"read"}})
	if c.status != http.StatusOK || c.str("scope") != "read" {
		t.Fatalf("narrowed refresh: %d %v", c.status, c.body)
	}
	d := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.str("refresh_token")}, "scope": {"read admin"}})
	if d.status != http.StatusBadRequest || d.str("error") != "invalid_scope" {
		t.Fatalf("widened refresh: %d %v", d.status, d.body)
	}
	// The refused request spent nothing: the token still rotates.
	if e := e.refresh(c.str("refresh_token")); e.status != http.StatusOK || e.str("scope") != "read write" {
		t.Fatalf("refresh after a refused narrowing: %d %v", e.status, e.body)
	}
}

// 8 and 50 concurrent refreshes with one refresh token: one rotation, every
// answer 200 with the same successor; after the grace window the old token
// is reuse, and the family (successor included) is revoked.
func TestConcurrentRefreshGrace(t *testing.T) {
	for _, n := range []int{8, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := newEnv(t, nil)
			rt := e.login().str("refresh_token")
			answers := make([]answer, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					answers[i] = e.refresh(rt)
				})
			}
			close(start)
			wg.Wait()
			next := answers[0].str("refresh_token")
			for i, a := range answers {
				if a.status != http.StatusOK || a.str("refresh_token") != next {
					t.Fatalf("answer %d: %d %v", i, a.status, a.body)
				}
			}
			fams, err := e.store.ListFamilies(t.Context(), store.FamilyFilter{})
			if err != nil || len(fams) != 1 || fams[0].Generation != 1 {
				t.Fatalf("families %+v, %v; want one rotation", fams, err)
			}
			e.clock.Advance(server.DefaultGrace + time.Second)
			if a := e.refresh(rt); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
				t.Fatalf("reuse after grace: %d %v", a.status, a.body)
			}
			if a := e.refresh(next); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
				t.Fatalf("successor after reuse: %d %v", a.status, a.body)
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t, nil)
	a := e.post("/oauth/token", "narrow", "narrow-secret", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	if a.status != http.StatusOK || a.str("refresh_token") != "" || a.str("scope") != "read" {
		t.Fatalf("%d %v", a.status, a.body)
	}
	// client_secret_post works too.
	a = e.post("/oauth/token", "", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"narrow"}, "client_secret": {"narrow-secret"}})
	if a.status != http.StatusOK || a.str("scope") != "read write" {
		t.Fatalf("client_secret_post: %d %v", a.status, a.body)
	}
}

func TestErrorAnswers(t *testing.T) {
	e := newEnv(t, nil)
	rt := e.login().str("refresh_token")
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	cases := []struct {
		name         string
		id, secret   string
		form         url.Values
		status       int
		code         string
		wwwAuthBasic bool
	}{
		{"missing grant_type", appID, appSecret, form(), 400, "invalid_request", false},
		{"unknown grant", appID, appSecret, form("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), 400, "unsupported_grant_type", false},
		{"bad secret", appID, "wrong", form("grant_type", "client_credentials"), 401, "invalid_client", true},
		{"unknown client", "ghost", "x", form("grant_type", "client_credentials"), 401, "invalid_client", true},
		{"no client", "", "", form("grant_type", "client_credentials"), 401, "invalid_client", true},
		{"two auth methods", appID, appSecret, form("grant_type", "client_credentials", "client_secret", appSecret), 400, "invalid_request", false},
		{"grant not allowed", "narrow", "narrow-secret", form("grant_type", "password", "username", "alice", "password", "wonderland"), 400, "unauthorized_client", false},
		{"scope not allowed", "narrow", "narrow-secret", form("grant_type", "client_credentials", "scope", "admin"), 400, "invalid_scope", false},
		{"malformed scope", "narrow", "narrow-secret", form("grant_type", "client_credentials", "scope", "a  b"), 400, "invalid_scope", false},
		{"repeated parameter", appID, appSecret, form("grant_type", "client_credentials", "grant_type", "client_credentials"), 400, "invalid_request", false},
		{"wrong password", appID, appSecret, form("grant_type", "password", "username", "alice", "password", "x"), 400, "invalid_grant", false},
		{"unknown user", appID, appSecret, form("grant_type", "password", "username", "bob", "password", "x"), 400, "invalid_grant", false},
		{"missing password", appID, appSecret, form("grant_type", "password", "username", "alice"), 400, "invalid_request", false},
		{"missing refresh token", appID, appSecret, form("grant_type", "refresh_token"), 400, "invalid_request", false},
		{"junk refresh token", appID, appSecret, form("grant_type", "refresh_token", "refresh_token", "junk"), 400, "invalid_grant", false},
		{"unknown refresh token", appID, appSecret, form("grant_type", "refresh_token", "refresh_token", "rt_"+strings.Repeat("A", 43)), 400, "invalid_grant", false},
		{"another client's refresh token", "other", "other-secret", form("grant_type", "refresh_token", "refresh_token", rt), 400, "invalid_grant", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := e.post("/oauth/token", tc.id, tc.secret, tc.form)
			if a.status != tc.status || a.str("error") != tc.code || a.str("error_description") == "" {
				t.Fatalf("got %d %v, want %d %s", a.status, a.body, tc.status, tc.code)
			}
			if got := a.header.Get("WWW-Authenticate") != ""; got != tc.wwwAuthBasic {
				t.Errorf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
			}
			if a.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", a.header.Get("Content-Type"))
			}
		})
	}
	// The other client's attempt did not touch the token.
	if a := e.refresh(rt); a.status != http.StatusOK {
		t.Fatalf("refresh after the failed attempts: %d %v", a.status, a.body)
	}

	raw := []struct {
		name, method, ctype, body string
		status                    int
	}{
		{"GET", http.MethodGet, "", "", 405},
		{"JSON body", http.MethodPost, "application/json", `{"grant_type":"client_credentials"}`, 400},
		{"no content type", http.MethodPost, "", "grant_type=client_credentials", 400},
		{"bad encoding", http.MethodPost, "application/x-www-form-urlencoded", "grant_type=%zz", 400},
		{"too large", http.MethodPost, "application/x-www-form-urlencoded", "x=" + strings.Repeat("a", 20<<10), 413},
	}
	for _, tc := range raw {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(context.Background(), tc.method, e.url+"/oauth/token", strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			req.SetBasicAuth(appID, appSecret)
			a := e.do(req)
			if a.status != tc.status || a.str("error") != "invalid_request" {
				t.Fatalf("got %d %v, want %d invalid_request", a.status, a.body, tc.status)
			}
		})
	}
}

// A public client (no secret) may refresh the tokens of its own families,
// and only those.
func TestPublicClientRefresh(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	id, rt := server.FirstRefreshToken(testSecret)
	f := store.Family{ID: id, ClientID: "spa", Subject: "alice", CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), TokenHash: server.HashClientSecret(rt)}
	if err := e.store.CreateFamily(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	a := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}, "refresh_token": {rt}})
	if a.status != http.StatusOK || a.str("refresh_token") == "" {
		t.Fatalf("public refresh: %d %v", a.status, a.body)
	}
	// It may revoke its own family (log out).
	next := a.str("refresh_token")
	if r := e.post("/oauth/revoke", "", "", url.Values{"client_id": {"spa"}, "token": {next}}); r.status != 200 {
		t.Fatalf("public revoke: %d %v", r.status, r.body)
	}
	if r := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}, "refresh_token": {next}}); r.status != 400 {
		t.Fatalf("refresh after a public revoke: %d %v", r.status, r.body)
	}
	// A public client cannot use the other grants, nor present a secret.
	a = e.post("/oauth/token", "", "", url.Values{"grant_type": {"password"}, "client_id": {"spa"}, "username": {"alice"}, "password": {"wonderland"}})
	if a.status != http.StatusUnauthorized || a.str("error") != "invalid_client" {
		t.Fatalf("public password grant: %d %v", a.status, a.body)
	}
	a = e.post("/oauth/token", "spa", "guess", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if a.status != http.StatusUnauthorized {
		t.Fatalf("public client with a secret: %d %v", a.status, a.body)
	}
	// Nor refresh a confidential client's token.
	other := e.login().str("refresh_token")
	a = e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}, "refresh_token": {other}})
	if a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
		t.Fatalf("public client with another client's token: %d %v", a.status, a.body)
	}
}

// A rotated refresh token presented again gets the same successor for as
// long as the grace window lasts and the successor has never been used;
// once the successor is used, presenting it again is reuse.
func TestGraceUntilSuccessorUsed(t *testing.T) {
	e := newEnv(t, nil)
	rt := e.login().str("refresh_token")
	next := e.refresh(rt).str("refresh_token")
	e.clock.Advance(server.DefaultGrace - time.Second)
	if a := e.refresh(rt); a.status != http.StatusOK || a.str("refresh_token") != next {
		t.Fatalf("retry within grace, successor unused: %d %v", a.status, a.body)
	}
	if a := e.refresh(next); a.status != http.StatusOK {
		t.Fatalf("successor: %d %v", a.status, a.body)
	}
	if a := e.refresh(rt); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
		t.Fatalf("retry after the successor was used: %d %v", a.status, a.body)
	}
	fams, _ := e.store.ListFamilies(t.Context(), store.FamilyFilter{})
	if len(fams) != 1 || fams[0].RevokeReason != store.ReasonReuse {
		t.Fatalf("family after reuse: %+v", fams)
	}
}
