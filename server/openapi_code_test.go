package server_test

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// The clients of the OpenAPI test's code flow (TestOpenAPIResponses has
// a client named like authorize_test.go's web app).
const (
	oaWeb      = "oa-web"                 // public, first party
	oaRedirect = "https://app.example/cb" // its redirect URI
	oaThird    = "oa-third"               // confidential, third party
	oaThirdCB  = "https://third.example/cb"
	oaBye      = "https://app.example/bye" // oa-web's post-logout redirect URI
)

// oaParams is a valid authorization request of oa-web, with extra as
// authorizeParams takes it.
func oaParams(extra ...string) url.Values {
	return authorizeParams(append([]string{"client_id", oaWeb, "redirect_uri", oaRedirect}, extra...)...)
}

// pageNow is the checker's last answer as authorize_test.go's page.
func (ck *checker) pageNow(a answer) page {
	return page{status: a.status, header: a.header, body: ck.lastBody}
}

// codeFlow runs the authorization code flow, its pages, the userinfo and
// end-session endpoints and discovery through the checker, each
// documented answer at least once, as a browser (a cookie jar, no
// redirects followed) and an app would. It returns an access token of
// the openid scope whose family is still active, for codeFlowFailing.
func (ck *checker) codeFlow() string {
	t, e := ck.t, ck.e
	for _, c := range []store.Client{
		{ID: oaWeb, Grants: []string{"authorization_code", "refresh_token"}, Scopes: []string{"read", "openid", "profile"},
			RedirectURIs: []string{oaRedirect}, PostLogoutRedirectURIs: []string{oaBye}, Resources: []string{"https://api.example"}},
		{ID: oaThird, SecretHash: server.HashClientSecret(thirdSecret), Grants: []string{"authorization_code"},
			RedirectURIs: []string{oaThirdCB}, ThirdParty: true},
	} {
		if err := e.store.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	b := e.agent(t)
	get := func(path string, v url.Values) call {
		return call{method: "GET", path: path + "?" + v.Encode(), hc: b.hc}
	}
	postForm := func(path string, v url.Values) call {
		return call{method: "POST", path: path, header: form, body: v.Encode(), hc: b.hc}
	}
	toClient := func(a answer, redirect string) url.Values {
		t.Helper()
		loc, err := url.Parse(a.header.Get("Location"))
		if err != nil || !strings.HasPrefix(loc.String(), redirect+"?") || loc.Query().Get("iss") != e.url {
			t.Fatalf("Location %q, want %s with iss", a.header.Get("Location"), redirect)
		}
		return loc.Query()
	}

	// Before the redirect URI is trusted: tokend's page; after: the
	// client hears of the error.
	ck.do(get("/oauth/authorize", oaParams("redirect_uri", "https://evil.example/cb")), 400)
	ck.do(postForm("/oauth/authorize", oaParams("redirect_uri", "https://evil.example/cb")), 400)
	if q := toClient(ck.do(get("/oauth/authorize", oaParams("scope", "admin")), 302), oaRedirect); q.Get("error") != "invalid_scope" {
		t.Errorf("scope admin: %v, want invalid_scope", q)
	}
	noPKCE := get("/oauth/authorize", oaParams("code_challenge", "", "code_challenge_method", ""))
	noPKCE.invalid = true
	ck.do(noPKCE, 302)

	// The login page: wrong password, a form of another browser (login
	// CSRF), then the right password.
	params := oaParams("scope", "openid profile", "nonce", "n-1", "login_hint", "alice")
	login := ck.pageNow(ck.do(get("/oauth/authorize", params), 200))
	f := formFields(t, login)
	f.Set("username", "alice")
	f.Set("password", "wrong")
	ck.do(postForm("/login", f), 400)
	f.Set("password", "wonderland")
	csrf := postForm("/login", f)
	csrf.hc = e.agent(t).hc
	ck.do(csrf, 403)
	back := ck.do(postForm("/login", f), 303)
	loc, _ := url.Parse(back.header.Get("Location"))
	code := toClient(ck.do(call{method: "GET", path: loc.Path + "?" + loc.RawQuery, hc: b.hc}, 302), oaRedirect).Get("code")

	// The exchange, with the ID token; userinfo; a replay.
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oaRedirect},
		"code_verifier": {verifier}, "client_id": {oaWeb}}
	tokens := ck.do(call{method: "POST", path: "/oauth/token", header: form, body: exchange.Encode()}, 200)
	if tokens.str("id_token") == "" || tokens.str("refresh_token") == "" {
		t.Fatalf("code exchange: %v", tokens.body)
	}
	bearer := func(method, tok string) call {
		return call{method: method, path: "/userinfo", header: http.Header{"Authorization": {"Bearer " + tok}}}
	}
	ck.do(bearer("GET", tokens.str("access_token")), 200)
	ck.do(bearer("POST", tokens.str("access_token")), 200)
	for _, method := range []string{"GET", "POST"} {
		ck.do(bearer(method, tokens.str("access_token")+"x"), 401)
		ck.do(call{method: method, path: "/userinfo", invalid: true}, 401)
	}
	ck.do(call{method: "POST", path: "/oauth/token", header: form, body: exchange.Encode()}, 400)

	// Single sign-on, as a form POST: a code without the form, for a
	// resource (RFC 8707). Without openid, userinfo refuses the token.
	// prompt=login shows the form.
	q := toClient(ck.do(postForm("/oauth/authorize", oaParams("state", "st-2", "resource", "https://api.example")), 303), oaRedirect)
	exchange.Set("code", q.Get("code"))
	exchange.Set("resource", "https://api.example")
	ck.do(call{method: "POST", path: "/oauth/token", header: form, body: exchange.Encode()}, 200)
	exchange.Del("resource")
	exchange.Set("code", toClient(ck.do(get("/oauth/authorize", oaParams("state", "st-3")), 302), oaRedirect).Get("code"))
	plain := ck.do(call{method: "POST", path: "/oauth/token", header: form, body: exchange.Encode()}, 200)
	ck.do(bearer("GET", plain.str("access_token")), 403)
	ck.do(bearer("POST", plain.str("access_token")), 403)
	ck.do(postForm("/oauth/authorize", oaParams("prompt", "login")), 200)

	// Consent for a third-party client: deny, a forged form, an unknown
	// client, allow.
	consent := ck.pageNow(ck.do(get("/oauth/authorize", oaParams("client_id", oaThird, "redirect_uri", oaThirdCB, "scope", "")), 200))
	cf := formFields(t, consent)
	cf.Set("decision", "deny")
	if q := toClient(ck.do(postForm("/consent", cf), 303), oaThirdCB); q.Get("error") != "access_denied" {
		t.Errorf("deny: %v", q)
	}
	cf.Set("decision", "allow")
	forged := url.Values{}
	for k, vs := range cf {
		forged[k] = vs
	}
	forged.Set("csrf_token", "v1.9999999999.AAAA")
	ck.do(postForm("/consent", forged), 403)
	forged.Set("client_id", "ghost")
	ck.do(postForm("/consent", forged), 400)
	ck.do(postForm("/consent", cf), 303)

	// The stylesheet, and its revalidation.
	style := ck.do(call{method: "GET", path: "/login/style.css"}, 200)
	ck.do(call{method: "GET", path: "/login/style.css", header: http.Header{"If-None-Match": {style.header.Get("ETag")}}}, 304)

	// Logout: an unregistered post-logout URI; the confirmation page and
	// its form; with the ID token as hint and no session left, at once;
	// without a redirect URI, the logged-out page.
	ck.do(get("/oauth/logout", url.Values{"client_id": {oaWeb}, "post_logout_redirect_uri": {"https://evil.example/bye"}}), 400)
	ck.do(postForm("/oauth/logout", url.Values{"post_logout_redirect_uri": {oaBye}}), 400)
	confirm := ck.pageNow(ck.do(get("/oauth/logout", url.Values{"client_id": {oaWeb}, "post_logout_redirect_uri": {oaBye}, "state": {"bye"}}), 200))
	if a := ck.do(postForm("/oauth/logout", formFields(t, confirm)), 303); a.header.Get("Location") != oaBye+"?state=bye" {
		t.Errorf("confirmed logout goes to %q", a.header.Get("Location"))
	}
	ck.do(get("/oauth/logout", url.Values{"id_token_hint": {tokens.str("id_token")}, "post_logout_redirect_uri": {oaBye}, "end_families": {"true"}}), 303)
	ck.do(postForm("/oauth/logout", url.Values{"client_id": {oaWeb}}), 200)

	// A token whose family lives, for codeFlowFailing.
	fresh := e.agent(t)
	p := fresh.authorize(oaParams("scope", "openid", "state", "st-4"))
	code = fresh.codeFrom(fresh.follow(fresh.logIn(p, "alice", "wonderland")), oaRedirect, "st-4")
	exchange.Set("code", code)
	return ck.do(call{method: "POST", path: "/oauth/token", header: form, body: exchange.Encode()}, 200).str("access_token")
}

// codeFlowFailing provokes status, 500 or 503, from the browser and
// userinfo endpoints while the store fails (flaky): each needs the client,
// or the access token's family.
func (ck *checker) codeFlowFailing(accessToken string, status int) {
	params := oaParams()
	withCSRF := oaParams("csrf_token", "v1.9999999999.AAAA", "decision", "allow")
	ck.do(call{method: "GET", path: "/oauth/authorize?" + params.Encode()}, status)
	ck.do(call{method: "POST", path: "/oauth/authorize", header: form, body: params.Encode()}, status)
	ck.do(call{method: "POST", path: "/login", header: form, body: withCSRF.Encode()}, status)
	ck.do(call{method: "POST", path: "/consent", header: form, body: withCSRF.Encode()}, status)
	logout := url.Values{"client_id": {oaWeb}}
	ck.do(call{method: "GET", path: "/oauth/logout?" + logout.Encode()}, status)
	ck.do(call{method: "POST", path: "/oauth/logout", header: form, body: logout.Encode()}, status)
	for _, method := range []string{"GET", "POST"} {
		ck.do(call{method: method, path: "/userinfo", header: http.Header{"Authorization": {"Bearer " + accessToken}}}, status)
	}
}
