package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/refresh"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/verify"
)

func TestRevoke(t *testing.T) {
	e := newEnv(t, nil)
	a := e.login()
	rt, at := a.str("refresh_token"), a.str("access_token")
	// Another client's revocation is answered 200 and changes nothing.
	if r := e.post("/oauth/revoke", "other", "other-secret", url.Values{"token": {rt}}); r.status != 200 {
		t.Fatalf("other client's revoke: %d", r.status)
	}
	if r := e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {rt}}); r.body["active"] != true {
		t.Fatalf("token revoked by another client: %v", r.body)
	}
	if r := e.post("/oauth/revoke", appID, appSecret, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}); r.status != 200 {
		t.Fatalf("revoke: %d %v", r.status, r.body)
	}
	if r := e.refresh(rt); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("refresh after revoke: %d %v", r.status, r.body)
	}
	if r := e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {at}}); r.body["active"] != false {
		t.Fatalf("access token of a revoked family is active: %v", r.body)
	}
	// Unknown tokens: 200 too (RFC 7009 §2.2).
	if r := e.post("/oauth/revoke", appID, appSecret, url.Values{"token": {"junk"}}); r.status != 200 {
		t.Fatalf("revoke junk: %d", r.status)
	}
	if r := e.post("/oauth/revoke", appID, appSecret, url.Values{}); r.status != 400 || r.str("error") != "invalid_request" {
		t.Fatalf("revoke without token: %d %v", r.status, r.body)
	}
	if r := e.post("/oauth/revoke", appID, "bad", url.Values{"token": {rt}}); r.status != 401 {
		t.Fatalf("revoke with a bad secret: %d", r.status)
	}
	// Revoking via the access token ends the family too.
	b := e.login()
	if r := e.post("/oauth/revoke", appID, appSecret, url.Values{"token": {b.str("access_token")}}); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := e.refresh(b.str("refresh_token")); r.status != 400 {
		t.Fatalf("refresh after revoking the access token: %d", r.status)
	}
}

func TestIntrospect(t *testing.T) {
	e := newEnv(t, nil)
	a := e.login()
	rt, at := a.str("refresh_token"), a.str("access_token")
	r := e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {at}})
	if r.body["active"] != true || r.str("sub") != "alice" || r.str("client_id") != appID || r.str("scope") != "read write" || r.str("token_type") != "access_token" {
		t.Fatalf("access token: %v", r.body)
	}
	r = e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {rt}})
	if r.body["active"] != true || r.str("token_type") != "refresh_token" || r.str("sub") != "alice" {
		t.Fatalf("refresh token: %v", r.body)
	}
	// Another client learns nothing.
	for _, tok := range []string{at, rt} {
		r = e.post("/oauth/introspect", "other", "other-secret", url.Values{"token": {tok}})
		if len(r.body) != 1 || r.body["active"] != false {
			t.Fatalf("other client sees %v", r.body)
		}
	}
	// A rotated refresh token is inactive; an expired access token too.
	next := e.refresh(rt).str("refresh_token")
	if r = e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {rt}}); r.body["active"] != false {
		t.Fatalf("rotated token: %v", r.body)
	}
	if r = e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {next}}); r.body["active"] != true {
		t.Fatalf("successor: %v", r.body)
	}
	e.clock.Advance(16 * time.Minute)
	if r = e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {at}}); r.body["active"] != false {
		t.Fatalf("expired access token: %v", r.body)
	}
	if r = e.post("/oauth/introspect", appID, appSecret, url.Values{"token": {"junk"}}); r.status != 200 || r.body["active"] != false {
		t.Fatalf("junk: %d %v", r.status, r.body)
	}
	if r = e.post("/oauth/introspect", "", "", url.Values{"token": {at}}); r.status != 401 {
		t.Fatalf("unauthenticated introspection: %d", r.status)
	}
}

func TestFamilyLifetimes(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.RefreshIdle, c.RefreshAbsolute = time.Hour, 3*time.Hour })
	rt := e.login().str("refresh_token")
	// Used every 50 minutes, the family lives until its absolute end.
	for range 3 {
		e.clock.Advance(50 * time.Minute)
		a := e.refresh(rt)
		if a.status != 200 {
			t.Fatalf("refresh within idle: %d %v", a.status, a.body)
		}
		rt = a.str("refresh_token")
	}
	e.clock.Advance(31 * time.Minute) // 3h01 after login
	if a := e.refresh(rt); a.status != 400 || a.str("error") != "invalid_grant" {
		t.Fatalf("after the absolute lifetime: %d %v", a.status, a.body)
	}
	rt = e.login().str("refresh_token")
	e.clock.Advance(61 * time.Minute)
	if a := e.refresh(rt); a.status != 400 {
		t.Fatalf("after the idle lifetime: %d %v", a.status, a.body)
	}
}

func TestDiscoveryAndVerifier(t *testing.T) {
	e := newEnv(t, nil)
	var meta map[string]any
	resp, err := http.Get(e.url + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	for _, k := range []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint", "jwks_uri"} {
		if s, _ := meta[k].(string); !strings.HasPrefix(s, e.url+"/") {
			t.Errorf("metadata %s = %v", k, meta[k])
		}
	}
	at := e.login().str("access_token")
	v := verify.New(e.url, &verify.Options{Now: e.clock.Now})
	c, err := v.Verify(t.Context(), at)
	if err != nil || c.Subject != "alice" || c.ClientID != appID || !c.HasScope("write") {
		t.Fatalf("verify: %+v, %v", c, err)
	}
}

// x/oauth2's clientcredentials and Config.TokenSource work against the
// server unchanged, and refresh.Source keeps a token fresh against it.
func TestOAuth2ClientsEndToEnd(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	cc := &clientcredentials.Config{ClientID: "narrow", ClientSecret: "narrow-secret", TokenURL: e.url + "/oauth/token", Scopes: []string{"read"}}
	tok, err := cc.Token(ctx)
	if err != nil || tok.AccessToken == "" || tok.Expiry.IsZero() {
		t.Fatalf("clientcredentials: %v, %v", tok, err)
	}
	cfg := &oauth2.Config{ClientID: appID, ClientSecret: appSecret, Endpoint: oauth2.Endpoint{TokenURL: e.url + "/oauth/token"}}
	first, err := cfg.PasswordCredentialsToken(ctx, "alice", "wonderland")
	if err != nil {
		t.Fatal(err)
	}
	expired := *first
	expired.Expiry = time.Now().Add(-time.Minute)
	tok2, err := cfg.TokenSource(ctx, &expired).Token()
	if err != nil || tok2.RefreshToken == first.RefreshToken || tok2.AccessToken == first.AccessToken {
		t.Fatalf("Config.TokenSource refresh: %v, %v", tok2, err)
	}

	// MinBackoff 1ns: three tokens rejected at once in a row would
	// otherwise make the Source wait before the third fetch (see
	// refresh.Source.Invalidate).
	src := refresh.FromConfig(cfg, &oauth2.Token{RefreshToken: tok2.RefreshToken}, &refresh.Options{MinBackoff: time.Nanosecond})
	defer src.Close()
	seen := map[string]bool{}
	for range 3 {
		tok, err := src.TokenContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen[tok.AccessToken] = true
		src.Invalidate(tok) // as a resource server's 401 would
	}
	if len(seen) != 3 {
		t.Fatalf("refresh.Source got %d distinct tokens over 3 refreshes", len(seen))
	}
}

func TestMintAndSessions(t *testing.T) {
	e := newEnv(t, nil)
	mint := func(id, secret, body string) answer {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url+"/v1/tokens", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(id, secret)
		return e.do(req)
	}
	a := mint(appID, appSecret, `{"subject":"u1","scope":"chat","ttl":60,"claims":{"room":"42"}}`)
	if a.status != 200 || a.body["expires_in"] != float64(60) || a.str("session_id") == "" || a.str("refresh_token") == "" {
		t.Fatalf("mint: %d %v", a.status, a.body)
	}
	c, err := verify.New(e.url, &verify.Options{Now: e.clock.Now}).Verify(t.Context(), a.str("access_token"))
	if err != nil || c.Extra["room"] != "42" || c.Subject != "u1" {
		t.Fatalf("minted claims: %+v, %v", c, err)
	}
	// Asked again: the same access token without a refresh token (see
	// TestMintNeverSharesAFamily); forced: a new pair.
	if b := mint(appID, appSecret, `{"subject":"u1","scope":"chat","ttl":60,"claims":{"room":"42"}}`); b.str("access_token") != a.str("access_token") || b.str("refresh_token") != "" {
		t.Errorf("unforced mint: %v", b.body)
	}
	if b := mint(appID, appSecret, `{"subject":"u1","scope":"chat","ttl":60,"claims":{"room":"42"},"force":true}`); b.str("refresh_token") == a.str("refresh_token") {
		t.Errorf("forced mint returned the cached pair")
	}
	bad := []struct{ body string }{
		{`{"scope":"x"}`}, {`{"subject":"u","ttl":-1}`}, {`{"subject":"u","ttl":999999}`},
		{`{"subject":"u","claims":{"sub":"root"}}`}, {`{"subject":"u","claims":[1]}`}, {`{"subject":"u","extra":1}`}, {`not json`},
	}
	for _, tc := range bad {
		if b := mint(appID, appSecret, tc.body); b.status != 400 || b.str("error") != "invalid_request" {
			t.Errorf("mint %s: %d %v", tc.body, b.status, b.body)
		}
	}
	if b := mint("other", "other-secret", `{"subject":"u1"}`); b.status != 403 {
		t.Errorf("non-minting client: %d %v", b.status, b.body)
	}

	list := func() []any {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, e.url+"/v1/subjects/u1/sessions", nil)
		req.SetBasicAuth(appID, appSecret)
		s, _ := e.do(req).body["sessions"].([]any)
		return s
	}
	if n := len(list()); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodDelete, e.url+"/v1/sessions/"+a.str("session_id"), nil)
	req.SetBasicAuth(appID, appSecret)
	if r := e.do(req); r.status != 204 {
		t.Fatalf("delete session: %d", r.status)
	}
	if n := len(list()); n != 1 {
		t.Fatalf("%d sessions after deleting one", n)
	}
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodDelete, e.url+"/v1/subjects/u1/sessions", nil)
	req.SetBasicAuth(appID, appSecret)
	if r := e.do(req); r.status != 200 || r.body["revoked"] != float64(1) {
		t.Fatalf("log out everywhere: %d %v", r.status, r.body)
	}
	if n := len(list()); n != 0 {
		t.Fatalf("%d sessions after logging out everywhere", n)
	}
}

// Refresh tokens never appear in the logs, even at debug level.
func TestNoTokensInLogs(t *testing.T) {
	e := newEnv(t, nil)
	a := e.login()
	rt := a.str("refresh_token")
	next := e.refresh(rt).str("refresh_token")
	e.clock.Advance(server.DefaultGrace + time.Second)
	e.refresh(rt) // reuse: logged as a warning
	e.post("/oauth/token", appID, "wrong-secret", url.Values{"grant_type": {"client_credentials"}})
	logs := e.logs.String()
	if !strings.Contains(logs, "reuse") {
		t.Fatalf("reuse not logged: %s", logs)
	}
	for _, secret := range []string{rt, next, a.str("access_token"), appSecret, "wrong-secret", "wonderland"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret appears in the logs")
		}
	}
}
