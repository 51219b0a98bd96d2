package server_test

// Security findings on the authorization code flow, OpenID Connect and
// RP-initiated logout. Each test asserts the behaviour the code should
// have and FAILS on the code as it stands; the report of the security
// review names the file and line at fault for each.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// Finding: max_age=0 (OpenID Connect Core §3.1.2.1: "equivalent to
// prompt=login") can never be satisfied. The login form sends the
// browser back to the authorization endpoint with max_age=0 still in the
// request; any time at all between the login and that request makes the
// fresh session "too old", so the login page is shown again, forever.
// server/code.go:72 (the max_age test) with server/login.go:311
// (backToAuthorize keeps max_age).
func TestAttackMaxAgeZeroLoopsOnTheLoginPage(t *testing.T) {
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

// Finding: a logout request that carries no session cookie at all (a
// server-to-server GET, or a cross-site POST, where SameSite=Lax keeps the
// cookie back) ends the session named by id_token_hint without asking
// anyone, and with end_families=true revokes every family that session
// started, of every client. Any relying party, a third-party one
// included, holding any ID token of the session (expired ones too: the
// hint's exp is not checked) can thus log the user out of tokend and
// revoke the refresh tokens of the user's other (first-party) apps.
// server/endsession.go:60 (no confirmation when sess == nil),
// server/endsession.go:175-190 (ends lr.hintSID and all its families).
func TestAttackThirdPartyHintEndsOtherClientsFamilies(t *testing.T) {
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
	attacker.get(e.url + "/oauth/logout?" + url.Values{"id_token_hint": {third.str("id_token")}, "end_families": {"true"}}.Encode())

	if r := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {alive.str("refresh_token")}, "client_id": {webApp}}); r.status != http.StatusOK {
		t.Errorf("a third-party client's cookie-less logout revoked the first-party client's family: %d %v", r.status, r.body)
	}
	if p := b.authorize(authorizeParams("prompt", "none", "state", "alive")); p.location == nil || p.location.Query().Get("code") == "" {
		t.Errorf("a logout request without the browser's cookie, nor any confirmation, ended the user's session: %v", p.location)
	}
}

// Finding: with one registered redirect URI that is a loopback pattern
// (http://127.0.0.1/PATH, any port), a request without redirect_uri is
// sent to that URI on port 80, a port the native app does not listen on
// (and that any local process may hold on systems without privileged
// ports). The comment of readRedirectURI says this case is refused; the
// code does not refuse it. server/authorize.go:141-142.
func TestAttackSingleLoopbackRedirectWithoutRedirectURI(t *testing.T) {
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

// Finding: a client_credentials token with the openid scope passes at
// /userinfo, which then presents the client as an end-user: {"sub":
// "<client_id>"}. Client IDs and usernames are separate namespaces, so a
// client named like a user is that user to any relying party that trusts
// /userinfo's sub. server/oidc.go:89 (only the scope is checked, not that
// the token is a user's, i.e. came from a user grant).
func TestAttackClientCredentialsTokenAtUserInfo(t *testing.T) {
	e := newCodeEnv(t, nil)
	a := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"openid profile"}})
	if a.status != http.StatusOK {
		t.Skipf("client_credentials with openid refused: %d %v", a.status, a.body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+a.str("access_token"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("/userinfo answered 200 for a client's own token (sub = client %q, shown as a user)", appID)
	}
}

// Finding: a code issued before its user was deleted, or before its
// browser session was logged out with end_families=true, is still
// redeemed afterwards (within the code's 60 s): the redemption checks
// neither the user nor the session, so it starts a 90-day family for a
// deleted user, or one that outlives the logout that was meant to end
// every family of the session. server/grant_authorization_code.go:26-49
// (no check of rec.Subject / rec.SessionID); store DeleteUser and
// EndSession leave the user's / session's unredeemed codes.
func TestAttackCodeOutlivesUserAndLogout(t *testing.T) {
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
