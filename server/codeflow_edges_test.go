package server_test

// The edges of the authorization code flow, OpenID Connect and
// RP-initiated logout that a security review found open, each closed and
// kept closed here.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// max_age=0 (OpenID Connect Core §3.1.2.1: "equivalent to prompt=login")
// shows the form once: the login answers it, and the browser gets its
// code however long it takes to follow the redirect.
func TestMaxAgeZeroAsksOnce(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	params := authorizeParams("max_age", "0", "state", "m0")
	p := b.authorize(params)
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("want the login page, got %d", p.status)
	}
	p = b.logIn(p, "alice", "wonderland")
	if p.status != http.StatusSeeOther {
		t.Fatalf("login: %d", p.status)
	}
	e.clock.Advance(time.Millisecond) // the browser follows the 303
	p = b.follow(p)
	if p.status == http.StatusOK && strings.Contains(p.body, `name="password"`) {
		t.Fatal("max_age=0: the user has just logged in and is shown the login page again (a loop no user can leave)")
	}
	b.codeFrom(p, webRedirect, "m0")
}

// A logout request that carries no session cookie (a server-to-server
// GET, or a cross-site POST, where SameSite=Lax keeps the cookie back)
// ends nothing, whatever id_token_hint it names; and end_families never
// ends another client's families: a third party holding an ID token of
// the session cannot log the user out of tokend or end the refresh
// tokens of her other apps.
func TestLogoutByHintEndsOnlyTheBrowsersOwn(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	first := e.exchange(b.loginFlow(authorizeParams("scope", "openid")))
	if first.status != http.StatusOK || first.str("refresh_token") == "" {
		t.Fatalf("first-party exchange: %d %v", first.status, first.body)
	}

	// The user lets the third-party app in (consent), which gets an ID
	// token of the same browser session.
	tp := authorizeParams("client_id", thirdApp, "redirect_uri", "https://third.example/cb", "scope", "openid", "state", "t1")
	p := b.authorize(tp)
	if p.status != http.StatusOK || !strings.Contains(p.body, "decision") {
		t.Fatalf("want the consent page, got %d", p.status)
	}
	f := formFields(t, p)
	f.Set("decision", "allow")
	code := b.codeFrom(b.follow(b.post(e.url+"/consent", f)), "https://third.example/cb", "t1")
	third := e.post("/oauth/token", thirdApp, thirdSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://third.example/cb"}, "code_verifier": {verifier}})
	if third.str("id_token") == "" {
		t.Fatalf("third-party exchange: %d %v", third.status, third.body)
	}

	// The third party, from its own server (no browser, no cookie).
	e.clock.Advance(time.Hour) // its ID token has expired
	// Control: the first-party family is alive before the logout.
	alive := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}, "client_id": {webApp}})
	if alive.status != http.StatusOK {
		t.Fatalf("control refresh: %d %v", alive.status, alive.body)
	}
	attacker := e.agent(t)
	if p := attacker.get(e.url + "/oauth/logout?" + url.Values{"id_token_hint": {third.str("id_token")}, "end_families": {"true"}}.Encode()); p.status != http.StatusOK {
		t.Fatalf("cookie-less logout: %d, want the logged-out page", p.status)
	}

	if r := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {alive.str("refresh_token")}, "client_id": {webApp}}); r.status != http.StatusOK {
		t.Errorf("a third-party client's cookie-less logout revoked the first-party client's family: %d %v", r.status, r.body)
	}
	if p := b.authorize(authorizeParams("prompt", "none", "state", "alive")); p.location == nil || p.location.Query().Get("code") == "" {
		t.Errorf("a logout request without the browser's cookie, nor any confirmation, ended the user's session: %v", p.location)
	}

	// The same hint from the user's browser ends her session, and with
	// end_families the third party's families only.
	if p := b.get(e.url + "/oauth/logout?" + url.Values{"id_token_hint": {third.str("id_token")}, "end_families": {"true"}}.Encode()); p.status != http.StatusOK {
		t.Fatalf("logout from the browser: %d", p.status)
	}
	if p := b.authorize(authorizeParams("prompt", "none")); p.location == nil || p.location.Query().Get("error") != "login_required" {
		t.Errorf("the browser's session after its logout: %v", p.location)
	}
	if r := e.post("/oauth/token", thirdApp, thirdSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {third.str("refresh_token")}}); third.str("refresh_token") != "" && r.str("error") != "invalid_grant" {
		t.Errorf("the third party's family after its end_families logout: %d %v", r.status, r.body)
	}
	if r := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {alive.str("refresh_token")}, "client_id": {webApp}}); r.status != http.StatusOK {
		t.Errorf("the first-party family after the third party's logout: %d %v", r.status, r.body)
	}
}

// A single registered loopback pattern (http://127.0.0.1/PATH, any port)
// is never the default redirect URI: port 80 is not the native app's, and
// any local process may hold it on systems without privileged ports.
func TestLoopbackPatternIsNoDefault(t *testing.T) {
	e := newCodeEnv(t, nil)
	if err := e.store.CreateClient(t.Context(), store.Client{ID: "native", Grants: []string{"authorization_code"},
		RedirectURIs: []string{"http://127.0.0.1/callback"}}); err != nil {
		t.Fatal(err)
	}
	b := e.agent(t)
	b.loginFlow(authorizeParams()) // a session, so the next request gets a code
	p := b.authorize(authorizeParams("client_id", "native", "redirect_uri", "", "state", "n1"))
	if p.location != nil {
		t.Fatalf("a loopback pattern used as the default redirect URI: %d, to %v", p.status, p.location)
	}
}

// A client_credentials token, even with the openid scope, is refused at
// /userinfo: it stands for a client, not a user, and client IDs and
// usernames are separate namespaces (a client named like a user would
// otherwise be that user to a relying party that trusts sub).
func TestUserInfoRefusesClientTokens(t *testing.T) {
	e := newCodeEnv(t, nil)
	a := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"openid profile"}})
	if a.status != http.StatusOK {
		t.Fatalf("client_credentials with openid: %d %v", a.status, a.body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+a.str("access_token"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("/userinfo with a client's own token: %d %q, want 401 invalid_token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// A code issued before its user was deleted, or before its browser
// session was logged out, is refused afterwards (within the code's 60 s):
// it would start a family for a deleted user, or one that outlives the
// logout.
func TestCodeEndsWithItsSession(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	b.loginFlow(authorizeParams())
	code := b.codeFrom(b.authorize(authorizeParams("state", "d1")), webRedirect, "d1")
	if _, err := e.store.DeleteUser(t.Context(), "alice", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if a := e.exchange(code); a.status == http.StatusOK {
		t.Errorf("a code of a deleted user was redeemed: refresh token %t", a.str("refresh_token") != "")
	}

	e2 := newCodeEnv(t, nil)
	b2 := e2.agent(t)
	first := e2.exchange(b2.loginFlow(authorizeParams("scope", "openid")))
	pending := b2.codeFrom(b2.authorize(authorizeParams("state", "d2")), webRedirect, "d2")
	p := b2.get(e2.url + "/oauth/logout?" + url.Values{"id_token_hint": {first.str("id_token")}, "end_families": {"true"}}.Encode())
	if p.status != http.StatusOK {
		t.Fatalf("logout: %d", p.status)
	}
	if a := e2.exchange(pending); a.status == http.StatusOK {
		t.Errorf("a code issued before the logout (end_families=true) was redeemed after it: a family of the ended session lives on")
	}
}
