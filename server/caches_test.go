package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/verify"
)

// No cache of the server answers what the store no longer holds true:
// what each test changes in the store, it changes behind the server's
// back (as the tokend CLI or another instance would), and the very next
// request, on the same clock, sees it.

// mintAs posts a mint body to /v1/tokens as client id.
func (e *env) mintAs(id, secret, body string) answer {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.url+"/v1/tokens", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(id, secret)
	return e.do(req)
}

// jwksKids are the kids of the access-token keys in the server's JWKS,
// and its Cache-Control. The ID-token keys (RS256; the tests' access keys
// are EdDSA or ES256), which the JWKS publishes beside them since ID
// tokens, are left out: TestJWKSPublishesIDKey is about them.
func (e *env) jwksKids() ([]string, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodGet, e.url+"/.well-known/jwks.json", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		if k.Alg != keys.RS256 {
			out = append(out, k.Kid)
		}
	}
	return out, resp.Header.Get("Cache-Control")
}

// A confidential client's repeated mint returns the cached access token
// only while introspection calls it active: after each change below, the
// repeat starts a new family (with its refresh token, signed
// by a key the store accepts), and introspection agrees with what the
// mint answered. Mints for a public client are never cached.
func TestMintCacheFollowsTheStore(t *testing.T) {
	const first = `{"subject":"alice","scope":"read"}`
	for _, tc := range []struct {
		name string
		// change changes the store after the first mint; it returns the
		// body of the repeated mint.
		change func(t *testing.T, e *env, minted answer) string
		// status and code are the repeat's answer if it is refused.
		status int
		code   string
	}{
		{name: "nothing changed"},
		{name: "key revoked by another process", change: func(t *testing.T, e *env, minted answer) string {
			if _, err := keys.Revoke(t.Context(), e.store, verify.KeyID(minted.str("access_token")), "", e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return first
		}},
		{name: "key revoked, JWKS served since", change: func(t *testing.T, e *env, minted answer) string {
			if _, err := keys.Revoke(t.Context(), e.store, verify.KeyID(minted.str("access_token")), "", e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			e.jwksKids() // the server's key set reloads
			return first
		}},
		{name: "session revoked", change: func(t *testing.T, e *env, minted answer) string {
			if a := e.request("DELETE", "/v1/sessions/"+minted.str("session_id"), nil, [2]string{appID, appSecret}); a.status != http.StatusNoContent {
				t.Fatalf("revoke session: %d %v", a.status, a.body)
			}
			return first
		}},
		{name: "subject's sessions revoked", change: func(t *testing.T, e *env, minted answer) string {
			if a := e.request("DELETE", "/v1/subjects/alice/sessions", nil, [2]string{appID, appSecret}); a.status != http.StatusOK {
				t.Fatalf("revoke subject: %d %v", a.status, a.body)
			}
			return first
		}},
		{name: "user deleted", change: func(t *testing.T, e *env, minted answer) string {
			if _, err := e.store.DeleteUser(t.Context(), "alice", e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return first
		}},
		{name: "user deleted and created again", change: func(t *testing.T, e *env, minted answer) string {
			if _, err := e.store.DeleteUser(t.Context(), "alice", e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			if err := e.store.CreateUser(t.Context(), store.User{Name: "alice", PasswordHash: password.Hash("x"), CreatedAt: e.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			return first
		}},
		{name: "client deleted and created again", change: func(t *testing.T, e *env, minted answer) string {
			recreate(t, e, appID, func(c *store.Client) {})
			return first
		}},
		{name: "client's scopes narrowed", change: func(t *testing.T, e *env, minted answer) string {
			recreate(t, e, appID, func(c *store.Client) { c.Scopes = []string{"write"} })
			return first
		}, status: http.StatusBadRequest, code: "invalid_scope"},
		{name: "client may no longer mint", change: func(t *testing.T, e *env, minted answer) string {
			recreate(t, e, appID, func(c *store.Client) { c.Mint = false })
			return first
		}, status: http.StatusForbidden, code: "unauthorized_client"},
		{name: "client's secret changed", change: func(t *testing.T, e *env, minted answer) string {
			recreate(t, e, appID, func(c *store.Client) { c.SecretHash = server.HashClientSecret("another-secret") })
			return first
		}, status: http.StatusUnauthorized, code: "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			minted := e.mintJSON(first)
			if minted.status != http.StatusOK || minted.str("refresh_token") == "" {
				t.Fatalf("first mint: %d %v", minted.status, minted.body)
			}
			body := first
			if tc.change != nil {
				body = tc.change(t, e, minted)
			}
			again := e.mintJSON(body)
			if tc.status != 0 {
				if again.status != tc.status || again.str("error") != tc.code {
					t.Fatalf("repeated mint: %d %v; want %d %s", again.status, again.body, tc.status, tc.code)
				}
				return
			}
			if again.status != http.StatusOK {
				t.Fatalf("repeated mint: %d %v", again.status, again.body)
			}
			firstActive := e.introspect(minted.str("access_token")).body["active"] == true
			cached := again.str("access_token") == minted.str("access_token")
			if tc.change == nil {
				// The cache's worth: the same token, no second family.
				if !cached || again.str("session_id") != minted.str("session_id") || again.str("refresh_token") != "" || !firstActive {
					t.Fatalf("repeat with nothing changed: %v (first token active: %v); want the cached token", again.body, firstActive)
				}
				return
			}
			if cached || firstActive {
				t.Fatalf("after the change the repeat answered the first token again (%v), which introspection calls active=%v", cached, firstActive)
			}
			if again.str("refresh_token") == "" || again.str("session_id") == minted.str("session_id") {
				t.Fatalf("repeated mint: %v; want a new session with its refresh token", again.body)
			}
			if r := e.introspect(again.str("access_token")); r.body["active"] != true {
				t.Fatalf("the token the repeat answered: %v; want active", r.body)
			}
			if kid := verify.KeyID(again.str("access_token")); kid == verify.KeyID(minted.str("access_token")) && strings.Contains(tc.name, "key") {
				t.Fatalf("signed by the revoked key %s", kid)
			}
			// The new family is cached in turn.
			if third := e.mintJSON(body); third.str("access_token") != again.str("access_token") {
				t.Fatalf("third mint: %v; want the second's token", third.body)
			}
		})
	}
}

// recreate deletes client id (ending its families) and creates it again,
// changed by mod, one second later on the server's clock.
func recreate(t *testing.T, e *env, id string, mod func(*store.Client)) {
	t.Helper()
	c, err := e.store.GetClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DeleteClient(t.Context(), id, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	c.CreatedAt = c.CreatedAt.Add(time.Second)
	mod(&c)
	if err := e.store.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

// A mint for a public client always starts a new family with its refresh
// token (a browser page mints on every load), never the cached one; and a
// backend's mint-for list, changed behind the server's back, applies to
// the next mint.
func TestMintForPublicClientIsNeverCached(t *testing.T) {
	e := browserEnv(t, false)
	a := e.mintAs("minter", "minter-secret", `{"subject":"alice","client_id":"web"}`)
	e.clock.Advance(time.Second)
	b := e.mintAs("minter", "minter-secret", `{"subject":"alice","client_id":"web"}`)
	for i, m := range []answer{a, b} {
		if m.status != http.StatusOK || m.str("refresh_token") == "" {
			t.Fatalf("mint %d for web: %d %v; want a refresh token", i, m.status, m.body)
		}
	}
	if a.str("session_id") == b.str("session_id") || a.str("access_token") == b.str("access_token") || a.str("refresh_token") == b.str("refresh_token") {
		t.Fatalf("two mints for web share a login: %v and %v", a.body, b.body)
	}
	for i, m := range []answer{a, b} {
		if r := e.request("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {m.str("refresh_token")}}, [2]string{}); r.status != http.StatusOK {
			t.Fatalf("refresh of login %d: %d %v", i, r.status, r.body)
		}
	}

	recreate(t, e, "minter", func(c *store.Client) { c.MintFor = nil })
	if r := e.mintAs("minter", "minter-secret", `{"subject":"alice","client_id":"web"}`); r.status != http.StatusForbidden || r.str("error") != "unauthorized_client" {
		t.Fatalf("mint for web once it left the mint-for list: %d %v; want 403 unauthorized_client", r.status, r.body)
	}
	recreate(t, e, "minter", func(c *store.Client) { c.MintFor = []string{"web"} })
	recreate(t, e, "web", func(c *store.Client) { c.Scopes = []string{"read"} })
	if r := e.mintAs("minter", "minter-secret", `{"subject":"alice","client_id":"web","scope":"write"}`); r.status != http.StatusBadRequest || r.str("error") != "invalid_scope" {
		t.Fatalf("mint for web of a scope it lost: %d %v; want 400 invalid_scope", r.status, r.body)
	}
}

// keysDown is a store whose ListKeys fails while down is set.
type keysDown struct {
	store.Store
	mu   sync.Mutex
	down bool
}

func (k *keysDown) ListKeys(ctx context.Context) ([]store.Key, error) {
	k.mu.Lock()
	down := k.down
	k.mu.Unlock()
	if down {
		return nil, store.ErrUnavailable
	}
	return k.Store.ListKeys(ctx)
}

func (k *keysDown) set(down bool) {
	k.mu.Lock()
	k.down = down
	k.mu.Unlock()
}

// When the keys cannot be read, nothing is signed (503, the key the store
// would have used is unknown) and the JWKS keeps being served from
// memory for verifiers, with max-age=0 so that they ask again soon.
func TestKeysUnreadable(t *testing.T) {
	e := newEnv(t, nil)
	kd := &keysDown{Store: e.store}
	ks, err := keys.Load(t.Context(), kd, "", time.Hour, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, u := serve(t, server.Config{Store: e.store, Signer: ks, Secret: testSecret, Now: e.clock.Now}, nil)
	e2 := &env{t: t, url: u, store: e.store, clock: e.clock}
	kid := ks.ActiveKeyID()
	kd.set(true)
	if a := e2.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}}); a.status != http.StatusServiceUnavailable || a.str("error") != "temporarily_unavailable" || a.header.Get("Retry-After") == "" {
		t.Fatalf("a grant while the keys cannot be read: %d %v; want 503 temporarily_unavailable with Retry-After", a.status, a.body)
	}
	if kids, cc := e2.jwksKids(); !slices.Equal(kids, []string{kid}) || cc != "public, max-age=0" {
		t.Fatalf("JWKS while the keys cannot be read: %v, %q; want [%s], public, max-age=0", kids, cc, kid)
	}
	kd.set(false)
	if kids, cc := e2.jwksKids(); !slices.Equal(kids, []string{kid}) || cc != "public, max-age=60" {
		t.Fatalf("JWKS once they can: %v, %q", kids, cc)
	}
	if a := e2.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}}); a.status != http.StatusOK {
		t.Fatalf("a grant once they can: %d %v", a.status, a.body)
	}
}

// The CORS union answers no for an origin the store no longer gives any
// client, from the very next request: a client deleted, or created again
// without the origin. A client created again with it is allowed at once.
func TestCORSFollowsTheStore(t *testing.T) {
	e := browserEnv(t, false)
	allowed := func(origin string) (preflight, actual bool) {
		t.Helper()
		p := e.request("OPTIONS", "/oauth/token", nil, [2]string{}, "Origin", origin, "Access-Control-Request-Method", "POST")
		a := e.request("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {"rt2_x"}}, [2]string{}, "Origin", origin)
		return p.header.Get("Access-Control-Allow-Origin") == origin, a.header.Get("Access-Control-Allow-Origin") == origin
	}
	check := func(what, origin string, want bool) {
		t.Helper()
		if p, a := allowed(origin); p != want || a != want {
			t.Errorf("%s: %s allowed: preflight %v, request %v; want %v", what, origin, p, a, want)
		}
	}
	const moved = "https://app.example"
	check("before", pageOrigin, true)
	check("before", moved, false)
	recreate(t, e, "web", func(c *store.Client) { c.Origins = []string{moved} })
	check("web moved to another origin", pageOrigin, false)
	check("web moved to another origin", moved, true)
	if _, err := e.store.DeleteClient(t.Context(), "web", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	check("web deleted", moved, false)
	check("site untouched", otherOrigin, true)
}

// plainSigner hides the KeyChecker of a *keys.Set: the server then signs
// from its last Reload without reading the store, as it did before every
// signature started with a Reload.
type plainSigner struct{ ks *keys.Set }

func (p plainSigner) Sign(claims any) (string, error) { return p.ks.Sign(claims) }
func (p plainSigner) JWKS() []byte                    { return p.ks.JWKS() }

// BenchmarkRefreshKeyReload alternates, request by request, a
// refresh_token grant on a server whose signer reloads the keys before
// every signature (the default) and one on a server whose signer does
// not (the anchor), each with the memory store through the handler, and
// reports both and their ratio: the price of never signing with a key
// revoked elsewhere.
func BenchmarkRefreshKeyReload(b *testing.B) {
	type refresher struct {
		e  *env
		rt string
	}
	start := func(plain bool) *refresher {
		e := newEnv(b, func(c *server.Config) {
			if plain {
				c.Signer = plainSigner{c.Signer.(*keys.Set)}
			}
		})
		a := e.mintJSON(`{"subject":"bench","force":true}`)
		if a.status != http.StatusOK {
			b.Fatalf("mint: %d %v", a.status, a.body)
		}
		return &refresher{e: e, rt: a.str("refresh_token")}
	}
	refresh := func(r *refresher) {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=refresh_token&refresh_token="+r.rt))
		req.RemoteAddr = "192.0.2.1:40000"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(appID, appSecret)
		rec := httptest.NewRecorder()
		r.e.srv.ServeHTTP(rec, req)
		var out struct {
			RefreshToken string `json:"refresh_token"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
		}
		r.rt = out.RefreshToken
	}
	fresh, plain := start(false), start(true)
	var tFresh, tPlain time.Duration
	n := 0
	for b.Loop() {
		first, second, t1, t2 := fresh, plain, &tFresh, &tPlain
		if n%2 == 1 {
			first, second, t1, t2 = plain, fresh, &tPlain, &tFresh
		}
		t0 := time.Now()
		refresh(first)
		mid := time.Now()
		refresh(second)
		*t1 += mid.Sub(t0)
		*t2 += time.Since(mid)
		n++
	}
	b.ReportMetric(float64(tPlain.Nanoseconds())/float64(n), "ns/anchor")
	b.ReportMetric(float64(tFresh.Nanoseconds())/float64(n), "ns/reload")
	b.ReportMetric(float64(tFresh)/float64(tPlain), "reload/anchor")
}
