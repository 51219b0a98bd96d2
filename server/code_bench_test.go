package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// codeBench is a browser logged in at a server on SQLite, and a family
// of the app's to rotate.
type codeBench struct {
	e       *env
	cookies []*http.Cookie
	rt      string
	scope   string // of the authorization requests
}

func (c *codeBench) serve(b *testing.B, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	c.e.srv.ServeHTTP(rec, req)
	return rec
}

// code is an authorization request with the browser's session: the
// code of its redirect.
func (c *codeBench) code(b *testing.B) string {
	req := httptest.NewRequest(http.MethodGet, "/oauth/authorize?"+authorizeParams("scope", c.scope).Encode(), nil)
	for _, k := range c.cookies {
		req.AddCookie(k)
	}
	rec := c.serve(b, req)
	loc, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
		b.Fatalf("authorize: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	return loc.Query().Get("code")
}

// token posts form to the token endpoint, authenticated as id if secret
// is not empty, and returns the refresh token of the 200.
func (c *codeBench) token(b *testing.B, form url.Values, id, secret string) string {
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(id, secret)
	}
	rec := c.serve(b, req)
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		b.Fatalf("token endpoint: %d %s", rec.Code, rec.Body)
	}
	return out.RefreshToken
}

// BenchmarkCodeFlowSQLite is a login by the code flow for a browser that
// has a session (single sign-on), beside its anchor, a refresh-token
// rotation, on the default SQLite store (fsync on every commit), through
// the handler without the network, one request at a time. Each
// iteration rotates the app's family (the anchor), gets a code from the
// authorization endpoint, and exchanges it with the PKCE verifier: an
// exchange creates a family where a rotation updates one. It reports the
// wall time and the process's CPU time of each (the CPU time does not
// count the waits for the disk, and little of other processes' load),
// and the exchange's over the rotation's. With scope=openid, the
// exchange also signs an ID token (RS256).
func BenchmarkCodeFlowSQLite(b *testing.B) {
	for _, scope := range []string{"read", "openid"} {
		b.Run("scope="+scope, func(b *testing.B) { benchmarkCodeFlow(b, scope) })
	}
}

func benchmarkCodeFlow(b *testing.B, scope string) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "tokend.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	e := newEnvOn(b, st, nil)
	if err := st.CreateClient(b.Context(), store.Client{ID: webApp, Grants: []string{"authorization_code", "refresh_token"},
		RedirectURIs: []string{webRedirect}}); err != nil {
		b.Fatal(err)
	}
	c := &codeBench{e: e, cookies: logInOnce(b, e), scope: scope}
	c.rt = e.mintAsB(b, `{"subject":"bench"}`)
	var wall, cpu [3]time.Duration // rotation, authorize, exchange
	step := func(i int, f func()) {
		t0, c0 := time.Now(), cpuTime(b)
		f()
		wall[i] += time.Since(t0)
		cpu[i] += cpuTime(b) - c0
	}
	for b.Loop() {
		step(0, func() {
			c.rt = c.token(b, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.rt}}, appID, appSecret)
		})
		var code string
		step(1, func() { code = c.code(b) })
		step(2, func() {
			c.token(b, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect},
				"code_verifier": {verifier}, "client_id": {webApp}}, "", "")
		})
	}
	n := float64(b.N)
	for i, name := range []string{"rotation", "authorize", "exchange"} {
		b.ReportMetric(float64(wall[i].Microseconds())/n, name+"-µs")
		b.ReportMetric(float64(cpu[i].Microseconds())/n, name+"-cpu-µs")
	}
	b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "exchange/rotation-cpu")
}

// logInOnce logs alice in through the login page and returns the
// session's cookies.
func logInOnce(b *testing.B, e *env) []*http.Cookie {
	p := e.agent(b)
	page := p.get(e.url + "/oauth/authorize?" + authorizeParams().Encode())
	p.codeFrom(p.follow(p.logIn(page, "alice", "wonderland")), webRedirect, "st-1")
	u, _ := url.Parse(e.url)
	return p.hc.Jar.Cookies(u)
}

// mintAsB mints a family of the app's for subject and returns its
// refresh token.
func (e *env) mintAsB(b *testing.B, body string) string {
	a := e.mintAs(appID, appSecret, body)
	if a.status != http.StatusOK || a.str("refresh_token") == "" {
		b.Fatalf("mint: %d %v", a.status, a.body)
	}
	return a.str("refresh_token")
}
