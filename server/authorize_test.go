package server_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/server/pkce"
	"github.com/tokend/tokend/store"
)

// The clients of the authorization code tests, added to newEnv's.
const (
	webApp      = "web"                    // public, first party
	webRedirect = "https://app.example/cb" // its one redirect URI
	thirdApp    = "third"                  // confidential, third party
	thirdSecret = "third-secret-0123456789"
	verifier    = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

// newCodeEnv is newEnv with the clients of the code flow.
func newCodeEnv(t *testing.T, mod func(*server.Config)) *env {
	t.Helper()
	e := newEnv(t, mod)
	for _, c := range []store.Client{
		{ID: webApp, Grants: []string{"authorization_code", "refresh_token"}, Scopes: []string{"read", "write", "openid", "profile"}, RedirectURIs: []string{webRedirect, "http://127.0.0.1/native"},
			PostLogoutRedirectURIs: []string{"https://app.example/bye"}, Resources: []string{"https://api.example"}},
		{ID: thirdApp, SecretHash: server.HashClientSecret(thirdSecret), Grants: []string{"authorization_code", "refresh_token"},
			RedirectURIs: []string{"https://third.example/cb"}, ThirdParty: true},
	} {
		if err := e.store.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// agent is a agent at tokend: it keeps cookies and does not follow
// redirects, so that each step can be asserted.
type agent struct {
	t  testing.TB
	e  *env
	hc *http.Client
}

func (e *env) agent(t testing.TB) *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{t: t, e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer to the agent.
type page struct {
	status   int
	header   http.Header
	body     string
	location *url.URL // nil without a Location
}

func (b *agent) send(req *http.Request) page {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	if loc := resp.Header.Get("Location"); loc != "" {
		u, err := url.Parse(loc)
		if err != nil {
			b.t.Fatalf("Location %q: %v", loc, err)
		}
		p.location = u
	}
	return p
}

func (b *agent) get(u string) page {
	b.t.Helper()
	req, _ := http.NewRequestWithContext(b.t.Context(), http.MethodGet, u, nil)
	return b.send(req)
}

func (b *agent) post(u string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequestWithContext(b.t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.send(req)
}

// authorizeParams are a valid authorization request of the web app.
func authorizeParams(extra ...string) url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {webApp}, "redirect_uri": {webRedirect},
		"scope": {"read"}, "state": {"st-1"}, "code_challenge": {pkce.Challenge(verifier)}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	return v
}

func (b *agent) authorize(params url.Values) page {
	b.t.Helper()
	return b.get(b.e.url + "/oauth/authorize?" + params.Encode())
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)

// formFields returns the hidden fields of the form of a page.
func formFields(t testing.TB, p page) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
		v.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if len(v) == 0 {
		t.Fatalf("no form on the page (%d): %.400s", p.status, p.body)
	}
	return v
}

// logIn fills in the login page p as user with pw and posts it.
func (b *agent) logIn(p page, user, pw string) page {
	b.t.Helper()
	f := formFields(b.t, p)
	f.Set("username", user)
	f.Set("password", pw)
	return b.post(b.e.url+"/login", f)
}

// follow gets the Location of p, which must be on tokend.
func (b *agent) follow(p page) page {
	b.t.Helper()
	if p.location == nil || !strings.HasPrefix(p.location.String(), b.e.url) {
		b.t.Fatalf("answer %d goes to %v, not to tokend", p.status, p.location)
	}
	return b.get(p.location.String())
}

// codeFrom returns the code of a redirect to the client, checking that
// it goes to redirect with the request's state and tokend's iss.
func (b *agent) codeFrom(p page, redirect, state string) string {
	b.t.Helper()
	if p.status != http.StatusFound && p.status != http.StatusSeeOther || p.location == nil {
		b.t.Fatalf("want a redirect to the client, got %d: %.300s", p.status, p.body)
	}
	q := p.location.Query()
	base := *p.location
	base.RawQuery = ""
	if base.String() != redirect || q.Get("state") != state || q.Get("iss") != b.e.url || q.Get("code") == "" {
		b.t.Fatalf("redirect %v: want %s with state %q, iss %s and a code", p.location, redirect, state, b.e.url)
	}
	return q.Get("code")
}

// loginFlow runs an authorization request through the login page as
// alice and returns the code.
func (b *agent) loginFlow(params url.Values) string {
	b.t.Helper()
	p := b.authorize(params)
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		b.t.Fatalf("want the login page, got %d: %.300s", p.status, p.body)
	}
	p = b.logIn(p, "alice", "wonderland")
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("login: %d: %.300s", p.status, p.body)
	}
	return b.codeFrom(b.follow(p), params.Get("redirect_uri"), params.Get("state"))
}

// exchange redeems code at the token endpoint as the web app.
func (e *env) exchange(code string, extra ...string) answer {
	e.t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}, "client_id": {webApp}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			f.Del(extra[i])
		} else {
			f.Set(extra[i], extra[i+1])
		}
	}
	return e.post("/oauth/token", "", "", f)
}

func TestCodeFlow(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	code := b.loginFlow(authorizeParams())
	a := e.exchange(code)
	if a.status != http.StatusOK || a.str("access_token") == "" || a.str("refresh_token") == "" || a.str("scope") != "read" {
		t.Fatalf("exchange: %d %v", a.status, a.body)
	}
	r := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.str("refresh_token")}, "client_id": {webApp}})
	if r.status != http.StatusOK {
		t.Fatalf("refresh after the exchange: %d %v", r.status, r.body)
	}
}

// A code is redeemed once: a second exchange is refused and revokes the
// family of the first (RFC 6749 §4.1.2), whose refresh token then fails.
func TestCodeReplayRevokesTheFirstTokens(t *testing.T) {
	e := newCodeEnv(t, nil)
	code := e.agent(t).loginFlow(authorizeParams())
	first := e.exchange(code)
	if first.status != http.StatusOK {
		t.Fatalf("first exchange: %d %v", first.status, first.body)
	}
	second := e.exchange(code)
	if second.status != http.StatusBadRequest || second.str("error") != "invalid_grant" {
		t.Fatalf("second exchange: %d %v, want 400 invalid_grant", second.status, second.body)
	}
	r := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}, "client_id": {webApp}})
	if r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("the first exchange's refresh token after the replay: %d %v, want invalid_grant", r.status, r.body)
	}
	if !strings.Contains(e.logs.String(), "authorization code presented again") || strings.Contains(e.logs.String(), code) {
		t.Fatalf("the replay is not logged, or its code is: %s", e.logs.String())
	}
}

func TestCodeRefusals(t *testing.T) {
	e := newCodeEnv(t, nil)
	for _, tc := range []struct {
		name  string
		extra []string
		wait  time.Duration
	}{
		{"wrong verifier", []string{"code_verifier", strings.Repeat("x", 43)}, 0},
		{"verifier missing", []string{"code_verifier", ""}, 0},
		{"verifier is the challenge (plain)", []string{"code_verifier", pkce.Challenge(verifier)}, 0},
		{"another redirect_uri", []string{"redirect_uri", "http://127.0.0.1/native"}, 0},
		{"redirect_uri missing", []string{"redirect_uri", ""}, 0},
		{"unknown code", []string{"code", "AAAA"}, 0},
		{"expired (60 s)", nil, 60 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := e.agent(t).loginFlow(authorizeParams())
			e.clock.Advance(tc.wait)
			a := e.exchange(code, tc.extra...)
			if a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
				t.Fatalf("got %d %v, want 400 invalid_grant", a.status, a.body)
			}
			if tc.wait == 0 && tc.name != "unknown code" {
				// A refused exchange does not spend the code.
				if ok := e.exchange(code); ok.status != http.StatusOK {
					t.Fatalf("the right exchange after a refused one: %d %v", ok.status, ok.body)
				}
			}
		})
	}
	t.Run("code of another client", func(t *testing.T) {
		code := e.agent(t).loginFlow(authorizeParams())
		a := e.post("/oauth/token", thirdApp, thirdSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {webRedirect}, "code_verifier": {verifier}})
		if a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
			t.Fatalf("got %d %v, want 400 invalid_grant", a.status, a.body)
		}
	})
}

// PKCE is required, S256 only; each refusal goes back to the client as
// invalid_request with state and iss (RFC 6749 §4.1.2.1).
func TestAuthorizeRefusalsRedirect(t *testing.T) {
	e := newCodeEnv(t, nil)
	for _, tc := range []struct {
		name  string
		extra []string
		code  string
	}{
		{"PKCE missing", []string{"code_challenge", "", "code_challenge_method", ""}, "invalid_request"},
		{"plain", []string{"code_challenge_method", "plain"}, "invalid_request"},
		{"method missing", []string{"code_challenge_method", ""}, "invalid_request"},
		{"malformed challenge", []string{"code_challenge", "short"}, "invalid_request"},
		{"token response type", []string{"response_type", "token"}, "unsupported_response_type"},
		{"scope not allowed", []string{"scope", "read admin"}, "invalid_scope"},
		{"resource not registered", []string{"resource", "https://other.example"}, "invalid_target"},
		{"resource with fragment", []string{"resource", "https://api.example#x"}, "invalid_target"},
		{"prompt none with login", []string{"prompt", "none login"}, "invalid_request"},
		{"negative max_age", []string{"max_age", "-1"}, "invalid_request"},
		{"openid without redirect_uri", []string{"client_id", thirdApp, "scope", "openid", "redirect_uri", ""}, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.agent(t).authorize(authorizeParams(tc.extra...))
			if p.status != http.StatusFound || p.location == nil {
				t.Fatalf("got %d %.200s, want a redirect", p.status, p.body)
			}
			q := p.location.Query()
			if q.Get("error") != tc.code || q.Get("state") != "st-1" || q.Get("iss") != e.url || q.Get("code") != "" {
				t.Fatalf("redirect %v, want error=%s with state and iss", p.location, tc.code)
			}
		})
	}
}

// An unregistered or malformed redirect URI, or an unknown client, gets
// tokend's error page and never a redirect.
func TestAuthorizeRedirectURIVariants(t *testing.T) {
	e := newCodeEnv(t, nil)
	for _, uri := range []string{
		"https://APP.example/cb", "https://app.example/CB", "https://app.example/cb/", "https://app.example/cb/x",
		"https://app.example/cb?x=1", "https://app.example/cb#x", "https://user@app.example/cb",
		"https://app.example/c%62", "https://app.example:443/cb", "https://аpp.example/cb", "https://xn--pp-8cd.example/cb",
		"https://app.example.evil.example/cb", "http://app.example/cb", "javascript:alert(1)", "http://127.0.0.1:8080/native/",
		"http://127.0.0.1:8080@evil.example/native", "http://localhost:8080/native",
	} {
		t.Run(uri, func(t *testing.T) {
			p := e.agent(t).authorize(authorizeParams("redirect_uri", uri))
			if p.status != http.StatusBadRequest || p.location != nil || !strings.Contains(p.body, "redirect URI is not registered") {
				t.Fatalf("got %d, Location %v: %.200s; want the error page", p.status, p.location, p.body)
			}
			if !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Fatal("the error page has no CSP")
			}
		})
	}
	for name, params := range map[string]url.Values{
		"unknown client":             authorizeParams("client_id", "ghost"),
		"no client":                  authorizeParams("client_id", ""),
		"repeated parameter":         func() url.Values { v := authorizeParams(); v.Add("state", "two"); return v }(),
		"redirect of another client": authorizeParams("redirect_uri", "https://third.example/cb"),
	} {
		t.Run(name, func(t *testing.T) {
			p := e.agent(t).authorize(params)
			if p.status != http.StatusBadRequest || p.location != nil {
				t.Fatalf("got %d, Location %v; want the error page", p.status, p.location)
			}
		})
	}
	t.Run("loopback any port", func(t *testing.T) {
		params := authorizeParams("redirect_uri", "http://127.0.0.1:49152/native")
		code := e.agent(t).loginFlow(params)
		if a := e.exchange(code, "redirect_uri", "http://127.0.0.1:49152/native"); a.status != http.StatusOK {
			t.Fatalf("exchange: %d %v", a.status, a.body)
		}
	})
}

// A second authorization request in the same agent gets its code
// without the form (single sign-on); prompt=none answers login_required
// without a session; prompt=login and an exceeded max_age show the form.
func TestSingleSignOnAndPrompt(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	if p := b.authorize(authorizeParams("prompt", "none")); p.location == nil || p.location.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none without a session: %d %v, want login_required", p.status, p.location)
	}
	b.loginFlow(authorizeParams())
	p := b.authorize(authorizeParams("state", "st-2"))
	b.codeFrom(p, webRedirect, "st-2")
	p = b.authorize(authorizeParams("prompt", "none", "state", "st-3"))
	b.codeFrom(p, webRedirect, "st-3")
	if p := b.authorize(authorizeParams("prompt", "login")); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("prompt=login: %d, want the form", p.status)
	}
	e.clock.Advance(2 * time.Minute)
	if p := b.authorize(authorizeParams("max_age", "60")); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("max_age passed: %d, want the form", p.status)
	}
	b.codeFrom(b.authorize(authorizeParams("max_age", "3600", "state", "st-4")), webRedirect, "st-4")
	// The form answers prompt=login once: no loop.
	params := authorizeParams("prompt", "login", "state", "st-5")
	b.codeFrom(b.follow(b.logIn(b.authorize(params), "alice", "wonderland")), webRedirect, "st-5")
	e.clock.Advance(server.DefaultSessionTTL)
	if p := b.authorize(authorizeParams("prompt", "none")); p.location == nil || p.location.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none after the session expired: %v, want login_required", p.location)
	}
}

func TestLoginPageRefusals(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	form := b.authorize(authorizeParams())
	if csp := form.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "form-action 'self' https://app.example") {
		t.Fatalf("login page CSP %q", csp)
	}
	if form.header.Get("X-Frame-Options") != "DENY" {
		t.Fatal("no X-Frame-Options: DENY")
	}
	bad := b.logIn(form, "alice", "wrong")
	unknown := b.logIn(form, "nobody", "wrong")
	for _, p := range []page{bad, unknown} {
		if p.status != http.StatusBadRequest || p.location != nil || !strings.Contains(p.body, `role="alert"`) || strings.Contains(p.body, "wrong") {
			t.Fatalf("bad credentials: %d %v %.300s", p.status, p.location, p.body)
		}
	}
	if msg := func(s string) string { i := strings.Index(s, `role="alert"`); return s[i : i+120] }; msg(bad.body) != msg(unknown.body) {
		t.Fatalf("the message tells a wrong password from an unknown user:\n%s\n%s", msg(bad.body), msg(unknown.body))
	}
	// Login CSRF: a form posted from another site carries no CSRF cookie.
	other := e.agent(t)
	f := formFields(t, form)
	f.Set("username", "alice")
	f.Set("password", "wonderland")
	p := other.post(e.url+"/login", f)
	if p.status != http.StatusForbidden || p.location != nil || len(p.header.Values("Set-Cookie")) > 1 {
		t.Fatalf("login without the CSRF cookie: %d %v %v", p.status, p.location, p.header.Values("Set-Cookie"))
	}
	if p := other.authorize(authorizeParams("prompt", "none")); p.location.Query().Get("error") != "login_required" {
		t.Fatal("the refused login started a session")
	}
}

// A third-party client needs the user's consent, once; deny answers
// access_denied, prompt=none without consent consent_required.
func TestConsent(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	b.loginFlow(authorizeParams())
	params := authorizeParams("client_id", thirdApp, "redirect_uri", "https://third.example/cb", "scope", "")
	if p := b.authorize(authorizeParams("client_id", thirdApp, "redirect_uri", "https://third.example/cb", "scope", "", "prompt", "none")); p.location == nil || p.location.Query().Get("error") != "consent_required" {
		t.Fatalf("prompt=none without consent: %d %v", p.status, p.location)
	}
	p := b.authorize(params)
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="decision"`) {
		t.Fatalf("want the consent page, got %d: %.300s", p.status, p.body)
	}
	deny := formFields(t, p)
	deny.Set("decision", "deny")
	if d := b.post(e.url+"/consent", deny); d.location == nil || d.location.Query().Get("error") != "access_denied" {
		t.Fatalf("deny: %d %v", d.status, d.location)
	}
	allow := formFields(t, p)
	allow.Set("decision", "allow")
	b.codeFrom(b.follow(b.post(e.url+"/consent", allow)), "https://third.example/cb", "st-1")
	b.codeFrom(b.authorize(params), "https://third.example/cb", "st-1")
}

// Resource indicators set the access token's aud (RFC 8707).
func TestResourceIndicator(t *testing.T) {
	e := newCodeEnv(t, nil)
	code := e.agent(t).loginFlow(authorizeParams("resource", "https://api.example"))
	if a := e.exchange(code, "resource", "https://other.example"); a.str("error") != "invalid_target" {
		t.Fatalf("a resource not in the request: %d %v", a.status, a.body)
	}
	a := e.exchange(code)
	if a.status != http.StatusOK {
		t.Fatalf("exchange: %d %v", a.status, a.body)
	}
	if p := jwtPayload(t, a.str("access_token")); !strings.Contains(p, `"aud":["https://api.example"]`) {
		t.Fatalf("payload %s, want aud the resource", p)
	}
}
