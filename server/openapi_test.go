package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// loadOpenAPI loads server/openapi.yaml (the file the server embeds) and
// validates it as an OpenAPI document.
func loadOpenAPI(t *testing.T, raw []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.yaml is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.yaml does not validate: %v", err)
	}
	return doc
}

// The document the server serves is the one in the repository, and it is
// a valid OpenAPI 3.1 document.
func TestOpenAPIServed(t *testing.T) {
	onDisk, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	resp, err := http.Get(e.url + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	served, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(served, onDisk) {
		t.Fatalf("GET /openapi.yaml: %d %q, %d bytes; want 200 application/yaml, openapi.yaml's %d bytes",
			resp.StatusCode, resp.Header.Get("Content-Type"), len(served), len(onDisk))
	}
	loadOpenAPI(t, served)
}

// flaky is a store whose client and family lookups and pings fail while
// mode says so: 1 the store is unavailable (503), 2 an internal error (500).
type flaky struct {
	store.Store
	mode atomic.Int32
}

func (f *flaky) err() error {
	switch f.mode.Load() {
	case 1:
		return fmt.Errorf("flaky: %w", store.ErrUnavailable)
	case 2:
		return errors.New("flaky: boom")
	}
	return nil
}

func (f *flaky) GetClient(ctx context.Context, id string) (store.Client, error) {
	if err := f.err(); err != nil {
		return store.Client{}, err
	}
	return f.Store.GetClient(ctx, id)
}

func (f *flaky) GetFamily(ctx context.Context, id string) (store.Family, error) {
	if err := f.err(); err != nil {
		return store.Family{}, err
	}
	return f.Store.GetFamily(ctx, id)
}

func (f *flaky) Ping(ctx context.Context) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

// checker sends requests to a real server and validates each request and
// response against the OpenAPI document.
type checker struct {
	t      *testing.T
	e      *env
	doc    *openapi3.T
	router routers.Router
	seen   map[string]bool // "METHOD path status" of each validated answer
	// hc sends the calls that name no client of their own: it does not
	// follow redirects, which the checker validates as answers.
	hc *http.Client
	// lastBody is the body of the last answer (a page's HTML).
	lastBody string
}

// call describes one request.
type call struct {
	method, path string
	header       http.Header
	body         string
	basic        [2]string // id, secret; none if id is ""
	// invalid: the request itself breaks the document (a missing
	// parameter, a wrong content type), and ValidateRequest must say so.
	invalid bool
	// hc sends the request instead of the checker's client: a browser's
	// (a cookie jar; authorize_test.go's agent).
	hc *http.Client
}

// do sends c and returns the answer after validating it: the status must
// be wantStatus and documented for the route, the headers and body must
// fit the document.
func (ck *checker) do(c call, wantStatus int) answer {
	t := ck.t
	t.Helper()
	newReq := func() *http.Request {
		req, err := http.NewRequestWithContext(t.Context(), c.method, ck.e.url+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range c.header {
			req.Header[k] = vs
		}
		if c.basic[0] != "" {
			req.SetBasicAuth(url.QueryEscape(c.basic[0]), url.QueryEscape(c.basic[1]))
		}
		return req
	}
	hc := ck.hc
	if c.hc != nil {
		hc = c.hc
	}
	resp, err := hc.Do(newReq())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ck.lastBody = string(raw)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, raw, wantStatus)
	}

	opts := &openapi3filter.Options{AuthenticationFunc: credentialsPresent, IncludeResponseStatus: true, MultiError: true}
	req := newReq()
	route, params, err := ck.router.FindRoute(req)
	var in *openapi3filter.RequestValidationInput
	switch {
	case err == nil:
		in = &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
		err := openapi3filter.ValidateRequest(t.Context(), in)
		if c.invalid && err == nil {
			t.Errorf("%s %s: the document accepts a request the server refuses", c.method, c.path)
		} else if !c.invalid && err != nil {
			t.Errorf("%s %s: request does not fit the document: %v", c.method, c.path, err)
		}
	default:
		// No operation: the answer must be a documented 404 or 405.
		var rerr *routers.RouteError
		name := map[int]string{404: "NotFound", 405: "MethodNotAllowed"}[resp.StatusCode]
		if !errors.As(err, &rerr) || name == "" {
			t.Fatalf("%s %s: no route (%v) and answer %d", c.method, c.path, err, resp.StatusCode)
		}
		op := &openapi3.Operation{Responses: openapi3.NewResponses(
			openapi3.WithStatus(resp.StatusCode, &openapi3.ResponseRef{Value: ck.doc.Components.Responses[name].Value}))}
		route = &routers.Route{Spec: ck.doc, Path: c.path, Method: c.method, Operation: op}
		in = &openapi3filter.RequestValidationInput{Request: req, Route: route, Options: opts}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(raw)), Options: opts}
	if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
		t.Errorf("%s %s: answer %d %s does not fit the document: %v", c.method, c.path, resp.StatusCode, raw, err)
	}
	ck.seen[fmt.Sprintf("%s %s %d", c.method, route.Path, resp.StatusCode)] = true

	a := answer{status: resp.StatusCode, header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &a.body)
	}
	return a
}

// credentialsPresent checks the document's security schemes, HTTP Basic
// and Bearer, as far as the document can: an Authorization header of
// that scheme is sent.
func credentialsPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	req := in.RequestValidationInput.Request
	switch {
	case in.SecurityScheme.Type == "http" && in.SecurityScheme.Scheme == "basic":
		if _, _, ok := req.BasicAuth(); !ok {
			return errors.New("no HTTP Basic credentials")
		}
		return nil
	case in.SecurityScheme.Type == "http" && in.SecurityScheme.Scheme == "bearer":
		if !strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ") {
			return errors.New("no Bearer token")
		}
		return nil
	}
	return fmt.Errorf("unknown security scheme %s", in.SecuritySchemeName)
}

var form = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
var jsonCT = http.Header{"Content-Type": {"application/json"}}

// Every endpoint, and every status the server uses that a test can
// provoke, answers as the OpenAPI document says; requests that break the
// document are refused by the server too.
func TestOpenAPIResponses(t *testing.T) {
	var fl *flaky
	e := newEnv(t, func(c *server.Config) {
		fl = &flaky{Store: c.Store}
		c.Store = fl
	})
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := loadOpenAPI(t, raw)
	// The document's server is relative ("/"): route against this one.
	doc.Servers = openapi3.Servers{{URL: e.url}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ck := &checker{t: t, e: e, doc: doc, router: router, seen: map[string]bool{}, hc: noRedirects}
	app := [2]string{appID, appSecret}
	post := func(path string, basic [2]string, v url.Values) call {
		return call{method: "POST", path: path, header: form, body: v.Encode(), basic: basic}
	}

	// The token endpoint: each grant and each client authentication.
	ck.do(post("/oauth/token", app, url.Values{"grant_type": {"client_credentials"}}), 200)
	login := ck.do(post("/oauth/token", [2]string{}, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"},
		"client_id": {appID}, "client_secret": {appSecret}, "scope": {"read"}}), 200)
	rt := login.str("refresh_token")
	next := ck.do(post("/oauth/token", app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}), 200)
	ck.do(post("/oauth/token", app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt_nonsense"}}), 400)
	missing := post("/oauth/token", app, url.Values{"scope": {"x"}})
	missing.invalid = true
	ck.do(missing, 400)
	unsupported := post("/oauth/token", app, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}})
	unsupported.invalid = true
	ck.do(unsupported, 400)
	if a := ck.do(post("/oauth/token", [2]string{appID, "wrong"}, url.Values{"grant_type": {"client_credentials"}}), 401); a.header.Get("WWW-Authenticate") == "" {
		t.Error("401 to Basic without a challenge")
	}
	ck.do(post("/oauth/token", [2]string{}, url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {"wrong"}}), 401)
	ck.do(post("/oauth/token", app, url.Values{"grant_type": {"client_credentials"}, "scope": {strings.Repeat("s", 17<<10)}}), 413)
	wrongCT := call{method: "POST", path: "/oauth/token", header: jsonCT, body: `{"grant_type":"client_credentials"}`, basic: app, invalid: true}
	ck.do(wrongCT, 400)
	ck.do(call{method: "GET", path: "/oauth/token"}, 405)
	// Guessing a client's secret is throttled.
	for i := range 5 {
		ck.do(post("/oauth/token", [2]string{"narrow", fmt.Sprint("guess", i)}, url.Values{"grant_type": {"client_credentials"}}), 401)
	}
	if a := ck.do(post("/oauth/token", [2]string{"narrow", "guess"}, url.Values{"grant_type": {"client_credentials"}}), 429); a.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}

	// Introspection and revocation.
	ck.do(post("/oauth/introspect", app, url.Values{"token": {next.str("access_token")}}), 200)
	ck.do(post("/oauth/introspect", app, url.Values{"token": {next.str("refresh_token")}}), 200)
	ck.do(post("/oauth/introspect", app, url.Values{"token": {"nonsense"}}), 200)
	noToken := post("/oauth/introspect", app, url.Values{})
	noToken.invalid = true
	ck.do(noToken, 400)
	ck.do(post("/oauth/introspect", [2]string{}, url.Values{"token": {"x"}, "client_id": {"spa"}}), 401)
	ck.do(post("/oauth/introspect", app, url.Values{"token": {strings.Repeat("t", 17<<10)}}), 413)
	ck.do(call{method: "PUT", path: "/oauth/introspect"}, 405)
	ck.do(post("/oauth/revoke", app, url.Values{"token": {next.str("refresh_token")}, "token_type_hint": {"refresh_token"}}), 200)
	ck.do(post("/oauth/revoke", app, url.Values{"token": {"nonsense"}}), 200)
	noToken.path = "/oauth/revoke"
	ck.do(noToken, 400)
	ck.do(post("/oauth/revoke", [2]string{appID, "wrong"}, url.Values{"token": {"x"}}), 401)
	ck.do(post("/oauth/revoke", app, url.Values{"token": {strings.Repeat("t", 17<<10)}}), 413)
	ck.do(call{method: "GET", path: "/oauth/revoke"}, 405)

	// Discovery and keys.
	ck.do(call{method: "GET", path: "/.well-known/jwks.json"}, 200)
	ck.do(call{method: "GET", path: "/.well-known/oauth-authorization-server"}, 200)
	ck.do(call{method: "GET", path: "/.well-known/openid-configuration"}, 200)
	ck.do(call{method: "POST", path: "/.well-known/jwks.json"}, 405)

	// Mint and sessions.
	mint := func(body string, basic [2]string) call {
		return call{method: "POST", path: "/v1/tokens", header: jsonCT, body: body, basic: basic}
	}
	first := ck.do(mint(`{"subject":"u1","scope":"chat","ttl":60,"claims":{"room":"42"}}`, app), 200)
	if again := ck.do(mint(`{"subject":"u1","scope":"chat","ttl":60,"claims":{"room":"42"}}`, app), 200); again.str("refresh_token") != "" ||
		again.str("session_id") != first.str("session_id") {
		t.Errorf("repeated mint: %v", again.body)
	}
	ck.do(mint(`{"subject":"u1","force":true,"claims":null}`, app), 200)
	for _, body := range []string{`{"sub":"u1"}`, `{"subject":"u1","ttl":"60"}`, `{"subject":""}`, `{"subject":"u1","ttl":86401}`} {
		c := mint(body, app)
		c.invalid = true
		ck.do(c, 400)
	}
	formMint := call{method: "POST", path: "/v1/tokens", header: form, body: "subject=u1", basic: app, invalid: true}
	ck.do(formMint, 400)
	noAuth := mint(`{"subject":"u1"}`, [2]string{})
	noAuth.invalid = true // security: clientBasic is required
	if a := ck.do(noAuth, 401); a.header.Get("WWW-Authenticate") == "" {
		t.Error("401 on /v1 without a challenge")
	}
	ck.do(mint(`{"subject":"u1"}`, [2]string{"other", "other-secret"}), 403)
	ck.do(mint(`{"subject":"u1","claims":{"pad":"`+strings.Repeat("p", 17<<10)+`"}}`, app), 413)
	ck.do(call{method: "GET", path: "/v1/tokens"}, 405)
	// A backend starts a login for the public client spa, which refreshes
	// it with client_id alone.
	if err := e.store.CreateClient(t.Context(), store.Client{ID: "backend", SecretHash: server.HashClientSecret("backend-secret"),
		Grants: []string{"client_credentials"}, Mint: true, MintFor: []string{"spa"}}); err != nil {
		t.Fatal(err)
	}
	backend := [2]string{"backend", "backend-secret"}
	forSPA := ck.do(mint(`{"subject":"u2","client_id":"spa"}`, backend), 200)
	ck.do(post("/oauth/token", [2]string{}, url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}, "refresh_token": {forSPA.str("refresh_token")}}), 200)
	if a := ck.do(call{method: "GET", path: "/v1/subjects/u2/sessions", basic: backend}, 200); fmt.Sprint(a.body["sessions"]) == "[]" {
		t.Errorf("the backend does not see spa's session: %v", a.body)
	}
	ck.do(mint(`{"subject":"u2","client_id":"other"}`, backend), 403)

	ck.do(call{method: "GET", path: "/v1/subjects/u1/sessions", basic: app}, 200)
	ck.do(call{method: "GET", path: "/v1/subjects/u1/sessions", basic: [2]string{appID, "wrong"}}, 401)
	ck.do(call{method: "GET", path: "/v1/subjects/u1/sessions", basic: [2]string{"other", "other-secret"}}, 403)
	ck.do(call{method: "DELETE", path: "/v1/sessions/" + first.str("session_id"), basic: app}, 204)
	ck.do(call{method: "DELETE", path: "/v1/sessions/nonesuch", basic: app}, 404)
	ck.do(call{method: "DELETE", path: "/v1/sessions/nonesuch", basic: [2]string{"other", "other-secret"}}, 403)
	ck.do(call{method: "DELETE", path: "/v1/subjects/u1/sessions", basic: app}, 200)
	ck.do(call{method: "DELETE", path: "/v1/subjects/u1/sessions", basic: [2]string{appID, "wrong"}}, 401)
	ck.do(call{method: "DELETE", path: "/v1/subjects/u1/sessions", basic: [2]string{"other", "other-secret"}}, 403)
	ck.do(call{method: "DELETE", path: "/v1/sessions/x", basic: [2]string{appID, "wrong"}}, 401)
	// Identifiers that break the rule (issue 16, item 6), and claim names
	// that fold onto reserved ones (item 5).
	ck.do(call{method: "GET", path: "/v1/subjects/al%00ice/sessions", basic: app}, 400)
	ck.do(call{method: "DELETE", path: "/v1/subjects/al%FFice/sessions", basic: app}, 400)
	ck.do(call{method: "DELETE", path: "/v1/sessions/a%1Bb", basic: app}, 400)
	ck.do(mint(`{"subject":"al\u0000ice"}`, app), 400)
	ck.do(mint(`{"subject":"u1","claims":{"ſub":"root"}}`, app), 400)
	ck.do(post("/oauth/token", app, url.Values{"grant_type": {"password"}, "username": {"al\x00ice"}, "password": {"x"}}), 400)
	ck.do(post("/oauth/token", [2]string{"al\x00ice", "x"}, url.Values{"grant_type": {"client_credentials"}}), 401)
	ck.do(call{method: "POST", path: "/v1/sessions/x"}, 405)

	// Browser apps: preflights, a refusal of another page, cookie mode.
	if err := e.store.CreateClient(t.Context(), store.Client{ID: "web", Grants: []string{"refresh_token"},
		Origins: []string{"http://localhost:5173"}, Cookie: true}); err != nil {
		t.Fatal(err)
	}
	page := http.Header{"Origin": {"http://localhost:5173"}, "Access-Control-Request-Method": {"POST"}}
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/userinfo", "/v1/tokens", "/v1/subjects/u1/sessions", "/v1/sessions/x"} {
		if a := ck.do(call{method: "OPTIONS", path: path, header: page}, 204); a.header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
			t.Errorf("preflight of %s: %v", path, a.header)
		}
	}
	fromPage := func(c call, extra ...string) call {
		c.header = c.header.Clone()
		c.header.Set("Origin", "http://localhost:5173")
		for i := 0; i+1 < len(extra); i += 2 {
			c.header.Set(extra[i], extra[i+1])
		}
		return c
	}
	ck.do(fromPage(post("/oauth/token", app, url.Values{"grant_type": {"client_credentials"}})), 401)
	if err := e.store.CreateClient(t.Context(), store.Client{ID: "webminter", SecretHash: server.HashClientSecret("webminter-secret"),
		Grants: []string{"client_credentials"}, Mint: true, MintFor: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	webRT := ck.do(mint(`{"subject":"u3","client_id":"web"}`, [2]string{"webminter", "webminter-secret"}), 200).str("refresh_token")
	byCookie := ck.do(fromPage(post("/oauth/token", [2]string{}, url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {webRT}})), 200)
	if byCookie.str("refresh_token") != "" || byCookie.header.Get("Set-Cookie") == "" {
		t.Errorf("cookie-mode refresh: %v %v", byCookie.body, byCookie.header)
	}
	ck.do(fromPage(post("/oauth/revoke", [2]string{}, url.Values{"client_id": {"web"}}), "X-Tokend", "1"), 200)

	// The authorization code flow, its pages and OpenID Connect
	// (openapi_code_test.go).
	accessToken := ck.codeFlow()

	// Operations.
	ck.do(call{method: "GET", path: "/healthz"}, 200)
	ck.do(call{method: "GET", path: "/readyz"}, 200)
	ck.do(call{method: "GET", path: "/metrics"}, 200)
	ck.do(call{method: "GET", path: "/openapi.yaml"}, 200)
	ck.do(call{method: "GET", path: "/nonesuch"}, 404)

	// The store fails: unavailable (503 with Retry-After), then broken (500).
	for mode, status := range map[int32]int{1: 503, 2: 500} {
		fl.mode.Store(mode)
		ck.do(post("/oauth/token", app, url.Values{"grant_type": {"client_credentials"}}), status)
		ck.do(post("/oauth/revoke", app, url.Values{"token": {"x"}}), status)
		ck.do(post("/oauth/introspect", app, url.Values{"token": {"x"}}), status)
		ck.do(mint(`{"subject":"u1"}`, app), status)
		ck.do(call{method: "GET", path: "/v1/subjects/u1/sessions", basic: app}, status)
		ck.do(call{method: "DELETE", path: "/v1/subjects/u1/sessions", basic: app}, status)
		ck.do(call{method: "DELETE", path: "/v1/sessions/x", basic: app}, status)
		ck.codeFlowFailing(accessToken, status)
	}
	fl.mode.Store(1)
	ck.do(call{method: "GET", path: "/readyz"}, 503)
	fl.mode.Store(0)

	// Every status each operation documents was seen, except the 500 and
	// 503 of a readiness probe that never answers 500, and 429 on the
	// endpoints whose throttling is the token endpoint's (one table).
	var unseen []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				key := method + " " + path + " " + status
				if !ck.seen[key] && !strings.HasSuffix(key, " 429") {
					unseen = append(unseen, key)
				}
			}
		}
	}
	if len(unseen) > 0 {
		t.Errorf("documented but never provoked: %v", unseen)
	}
}
