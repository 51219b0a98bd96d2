package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

const (
	pageOrigin  = "http://localhost:5173"
	otherOrigin = "https://other.example"
)

// browserEnv is newEnv with a public client "web" of the browser page
// pageOrigin, and a confidential "site" of otherOrigin.
func browserEnv(t *testing.T, cookie bool) *env {
	t.Helper()
	e := newEnv(t, nil)
	for _, c := range []store.Client{
		{ID: "web", Grants: []string{"refresh_token"}, Origins: []string{pageOrigin}, Cookie: cookie},
		{ID: "site", SecretHash: server.HashClientSecret("site-secret"), Grants: []string{"client_credentials", "refresh_token"}, Origins: []string{otherOrigin}},
		{ID: "minter", SecretHash: server.HashClientSecret("minter-secret"), Grants: []string{"client_credentials"}, Mint: true, MintFor: []string{"web"}},
	} {
		if err := e.store.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// request sends method path with the headers (name, value pairs) and a
// form body if form is not nil, authenticating with Basic if basic[0] is
// set.
func (e *env) request(method, path string, form url.Values, basic [2]string, headers ...string) answer {
	e.t.Helper()
	var body io.Reader = http.NoBody
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if basic[0] != "" {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return e.do(req)
}

// mintFor has "minter" start a family of subject for the public client
// "web" and returns its refresh token.
func (e *env) mintFor(subject string) answer {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.url+"/v1/tokens", strings.NewReader(`{"subject":"`+subject+`","client_id":"web"}`))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("minter", "minter-secret")
	a := e.do(req)
	if a.status != http.StatusOK || a.str("refresh_token") == "" {
		e.t.Fatalf("mint for web: %d %v", a.status, a.body)
	}
	return a
}

// corsHeaders are the CORS answer headers a test looks at.
var corsHeaders = []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Max-Age"}

func corsOf(h http.Header) map[string]string {
	out := map[string]string{}
	for _, k := range corsHeaders {
		if v := h.Values(k); len(v) > 0 {
			out[k] = strings.Join(v, " | ")
		}
	}
	return out
}

// A preflight from a page of some client is answered 204 with the CORS
// headers for that origin; from another page, or on an endpoint that a
// page never calls, with none of them. Vary: Origin on every answer of
// the CORS endpoints.
func TestCORSPreflight(t *testing.T) {
	e := browserEnv(t, false)
	allowed := map[string]string{
		"Access-Control-Allow-Origin":      pageOrigin,
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "POST, GET, DELETE",
		"Access-Control-Allow-Headers":     "Authorization, Content-Type, X-Tokend",
		"Access-Control-Max-Age":           "600",
	}
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/v1/tokens", "/v1/subjects/alice/sessions", "/v1/sessions/x"} {
		a := e.request("OPTIONS", path, nil, [2]string{}, "Origin", pageOrigin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "content-type,x-tokend")
		if a.status != http.StatusNoContent || a.header.Get("Vary") != "Origin" || !equalMaps(corsOf(a.header), allowed) {
			t.Errorf("preflight of %s from %s: %d, Vary %q, %v; want 204, Origin, %v", path, pageOrigin, a.status, a.header.Get("Vary"), corsOf(a.header), allowed)
		}
		for _, origin := range []string{"https://evil.example", "http://localhost:5174", ""} {
			a := e.request("OPTIONS", path, nil, [2]string{}, "Origin", origin, "Access-Control-Request-Method", "POST")
			if a.status != http.StatusNoContent || a.header.Get("Vary") != "Origin" || len(corsOf(a.header)) != 0 {
				t.Errorf("preflight of %s from %q: %d, Vary %q, %v; want 204, Origin, no CORS headers", path, origin, a.status, a.header.Get("Vary"), corsOf(a.header))
			}
		}
	}
	// Introspection is for backends only.
	a := e.request("OPTIONS", "/oauth/introspect", nil, [2]string{}, "Origin", pageOrigin, "Access-Control-Request-Method", "POST")
	if a.status != http.StatusMethodNotAllowed || len(corsOf(a.header)) != 0 || a.header.Get("Vary") != "" {
		t.Errorf("preflight of /oauth/introspect: %d, %v", a.status, corsOf(a.header))
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// An actual request from an allowed page gets Allow-Origin and
// Allow-Credentials, also on an error; a request without Origin gets no
// CORS headers and is served as before.
func TestCORSActualRequest(t *testing.T) {
	e := browserEnv(t, false)
	rt := e.mintFor("alice").str("refresh_token")
	a := e.request("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {rt}}, [2]string{}, "Origin", pageOrigin)
	want := map[string]string{"Access-Control-Allow-Origin": pageOrigin, "Access-Control-Allow-Credentials": "true",
		"Access-Control-Expose-Headers": "Retry-After, WWW-Authenticate"}
	if a.status != http.StatusOK || a.str("refresh_token") == "" || !equalMaps(corsOf(a.header), want) || a.header.Get("Vary") != "Origin" {
		t.Fatalf("refresh from the page: %d %v %v", a.status, a.body, a.header)
	}
	bad := e.request("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {"rt2_nonsense"}}, [2]string{}, "Origin", pageOrigin)
	if bad.status != http.StatusBadRequest || bad.str("error") != "invalid_grant" || !equalMaps(corsOf(bad.header), want) {
		t.Errorf("refused refresh from the page: %d %v %v", bad.status, bad.body, corsOf(bad.header))
	}
	server := e.request("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {a.str("refresh_token")}}, [2]string{})
	if server.status != http.StatusOK || len(corsOf(server.header)) != 0 {
		t.Errorf("refresh without Origin: %d %v %v", server.status, server.body, corsOf(server.header))
	}
	// /v1 answers carry them too (a page may call a backend API there).
	v1 := e.request("GET", "/v1/subjects/alice/sessions", nil, [2]string{appID, appSecret}, "Origin", pageOrigin)
	if v1.status != http.StatusOK || !equalMaps(corsOf(v1.header), want) {
		t.Errorf("GET /v1 from the page: %d %v", v1.status, corsOf(v1.header))
	}
	evil := e.request("GET", "/v1/subjects/alice/sessions", nil, [2]string{appID, appSecret}, "Origin", "https://evil.example")
	if len(corsOf(evil.header)) != 0 || evil.header.Get("Vary") != "Origin" {
		t.Errorf("GET /v1 from another page: %v", evil.header)
	}
}

// On the token and revocation endpoints, a request whose Origin is not
// one of its client's is refused with 401 invalid_client, without a Basic
// challenge, even if the origin is another client's and the secret is
// right; it spends nothing of the throttle's budget.
func TestCORSClientOrigin(t *testing.T) {
	e := browserEnv(t, false)
	rt := e.mintFor("alice").str("refresh_token")
	refused := func(a answer, what string) {
		t.Helper()
		if a.status != http.StatusUnauthorized || a.str("error") != "invalid_client" || a.str("error_description") != "origin not allowed for this client" ||
			a.header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: %d %v %q; want 401 invalid_client, origin not allowed, no challenge", what, a.status, a.body, a.header.Get("WWW-Authenticate"))
		}
	}
	refreshForm := url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {rt}}
	a := e.request("POST", "/oauth/token", refreshForm, [2]string{}, "Origin", otherOrigin)
	refused(a, "web's refresh from site's page")
	if a.header.Get("Access-Control-Allow-Origin") != otherOrigin {
		t.Errorf("the refusal is not readable by the page of the other client: %v", corsOf(a.header))
	}
	refused(e.request("POST", "/oauth/token", refreshForm, [2]string{}, "Origin", "null"), "an opaque origin")
	refused(e.request("POST", "/oauth/token", refreshForm, [2]string{}, "Origin", pageOrigin, "Origin", pageOrigin), "two Origin headers")
	refused(e.request("POST", "/oauth/revoke", url.Values{"client_id": {"web"}, "token": {rt}}, [2]string{}, "Origin", otherOrigin), "web's revocation from site's page")
	// A confidential client with no origins, with its right secret.
	for i := range 20 {
		a := e.request("POST", "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, [2]string{"narrow", "narrow-secret"}, "Origin", pageOrigin)
		refused(a, fmt.Sprint("narrow from a page, attempt ", i))
	}
	// Those refusals counted nothing: narrow's budget for wrong secrets
	// is whole (five, then 429, as TestOpenAPIResponses shows).
	for i := range 5 {
		if a := e.request("POST", "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, [2]string{"narrow", fmt.Sprint("wrong", i)}); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d after origin refusals: %d %v; want 401", i, a.status, a.body)
		}
	}
	if a := e.request("POST", "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, [2]string{"narrow", "wrong"}); a.status != http.StatusTooManyRequests {
		t.Errorf("sixth wrong secret: %d; want 429", a.status)
	}
	// The web client from its own page, the site from its own, and both
	// from no page at all, are served; the token was not spent by the
	// refusals.
	if a := e.request("POST", "/oauth/token", refreshForm, [2]string{}, "Origin", pageOrigin); a.status != http.StatusOK {
		t.Errorf("web's refresh from its page: %d %v", a.status, a.body)
	}
	if a := e.request("POST", "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, [2]string{"site", "site-secret"}, "Origin", otherOrigin); a.status != http.StatusOK {
		t.Errorf("site from its page: %d %v", a.status, a.body)
	}
	if a := e.request("POST", "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, [2]string{"site", "site-secret"}); a.status != http.StatusOK {
		t.Errorf("site without Origin: %d %v", a.status, a.body)
	}
}

// countingStore counts ListClients.
type countingStore struct {
	store.Store
	lists chan struct{}
}

func (c *countingStore) ListClients(ctx context.Context) ([]store.Client, error) {
	c.lists <- struct{}{}
	return c.Store.ListClients(ctx)
}

// The union of origins is read from the store at most every 5 s of the
// server's clock: a new client's page is allowed once that has passed.
// Requests without Origin never read it.
func TestCORSOriginsReload(t *testing.T) {
	var cs *countingStore
	e := newEnv(t, func(c *server.Config) {
		cs = &countingStore{Store: c.Store, lists: make(chan struct{}, 100)}
		c.Store = cs
	})
	preflight := func() bool {
		a := e.request("OPTIONS", "/oauth/token", nil, [2]string{}, "Origin", pageOrigin, "Access-Control-Request-Method", "POST")
		return a.header.Get("Access-Control-Allow-Origin") == pageOrigin
	}
	e.login() // no Origin
	if n := len(cs.lists); n != 0 {
		t.Fatalf("a request without Origin listed the clients %d times", n)
	}
	if preflight() {
		t.Fatal("an origin no client has is allowed")
	}
	if err := e.store.CreateClient(t.Context(), store.Client{ID: "web", Grants: []string{"refresh_token"}, Origins: []string{pageOrigin}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(4 * time.Second)
	if preflight() {
		t.Error("the union was reloaded before 5 s")
	}
	e.clock.Advance(time.Second)
	if !preflight() {
		t.Error("the union was not reloaded after 5 s")
	}
	if n := len(cs.lists); n != 2 {
		t.Errorf("ListClients called %d times; want 2", n)
	}
}
