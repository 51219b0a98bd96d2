package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokend/tokend/store"
)

// idClaims verifies an ID token against the server's JWKS, as a relying
// party would (RS256 only), and returns its claims.
func (e *env) idClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	resp, err := http.Get(e.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("the ID token's kid %q is not in the JWKS", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("ID token signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// The openid scope gets an ID token (OpenID Connect Core §3.1.3.6)
// signed RS256 with the key the JWKS publishes, with the request's nonce,
// auth_time, azp, at_hash and the browser session's sid.
func TestIDToken(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	loginAt := e.clock.Now().Unix()
	code := b.loginFlow(authorizeParams("scope", "openid profile", "nonce", "n-0S6_WzA2Mj"))
	a := e.exchange(code)
	if a.status != http.StatusOK || a.str("id_token") == "" {
		t.Fatalf("exchange: %d %v", a.status, a.body)
	}
	c := e.idClaims(t, a.str("id_token"))
	sum := sha256.Sum256([]byte(a.str("access_token")))
	want := map[string]any{"iss": e.url, "sub": "alice", "aud": webApp, "azp": webApp, "nonce": "n-0S6_WzA2Mj",
		"at_hash": base64.RawURLEncoding.EncodeToString(sum[:16]), "auth_time": float64(loginAt)}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if sid, _ := c["sid"].(string); sid == "" {
		t.Error("no sid")
	}
	// A later code of the same session (single sign-on) keeps auth_time.
	e.clock.Advance(5 * 60e9)
	code = b.codeFrom(b.authorize(authorizeParams("scope", "openid", "state", "s2")), webRedirect, "s2")
	if c2 := e.idClaims(t, e.exchange(code).str("id_token")); c2["auth_time"] != float64(loginAt) || c2["sid"] != c["sid"] || c2["nonce"] != nil {
		t.Fatalf("second ID token %v: want the first login's auth_time and sid, no nonce", c2)
	}
	// Without openid, no ID token.
	code = b.codeFrom(b.authorize(authorizeParams("state", "s3")), webRedirect, "s3")
	if a := e.exchange(code); a.str("id_token") != "" {
		t.Fatal("an ID token without the openid scope")
	}
}

func TestUserInfo(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	get := func(tok string) (int, map[string]any, http.Header) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/userinfo", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, m, resp.Header
	}
	openid := e.exchange(b.loginFlow(authorizeParams("scope", "openid profile")))
	if st, m, _ := get(openid.str("access_token")); st != 200 || m["sub"] != "alice" || m["preferred_username"] != "alice" {
		t.Fatalf("userinfo: %d %v", st, m)
	}
	plain := e.exchange(b.codeFrom(b.authorize(authorizeParams("state", "s2")), webRedirect, "s2"))
	if st, m, h := get(plain.str("access_token")); st != 403 || m["error"] != "insufficient_scope" || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("userinfo without openid: %d %v", st, m)
	}
	if st, m, h := get(""); st != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("userinfo without a token: %d %v", st, m)
	}
	if st, _, _ := get(openid.str("access_token") + "x"); st != 401 {
		t.Fatalf("userinfo with a forged token: %d", st)
	}
	// Revoking the family ends userinfo for its access token.
	e.post("/oauth/revoke", "", "", url.Values{"token": {openid.str("refresh_token")}, "client_id": {webApp}})
	if st, _, _ := get(openid.str("access_token")); st != 401 {
		t.Fatalf("userinfo after the family was revoked: %d", st)
	}
}

// RP-initiated logout: with the session's ID token as hint, the session
// ends at once (and with end_families its families), and the browser goes
// to the registered post-logout URI with the state; without a hint the
// user confirms first; an unregistered post-logout URI is an error page.
func TestLogout(t *testing.T) {
	e := newCodeEnv(t, nil)
	b := e.agent(t)
	first := e.exchange(b.loginFlow(authorizeParams("scope", "openid")))
	logout := func(extra url.Values) page { return b.get(e.url + "/oauth/logout?" + extra.Encode()) }

	if p := logout(url.Values{"client_id": {webApp}, "post_logout_redirect_uri": {"https://evil.example/bye"}}); p.status != 400 || p.location != nil {
		t.Fatalf("unregistered post-logout URI: %d %v", p.status, p.location)
	}
	if p := logout(url.Values{"id_token_hint": {first.str("id_token") + "x"}}); p.status != 400 || p.location != nil {
		t.Fatalf("forged hint: %d %v", p.status, p.location)
	}
	// Without a hint: a confirmation page, and nothing ends yet.
	p := logout(url.Values{"client_id": {webApp}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"bye-1"}})
	if p.status != 200 || !strings.Contains(p.body, "<form") || !strings.Contains(p.header.Get("Content-Security-Policy"), "form-action 'self' https://app.example") {
		t.Fatalf("logout without a hint: %d %.300s", p.status, p.body)
	}
	b.codeFrom(b.authorize(authorizeParams("prompt", "none", "state", "still")), webRedirect, "still")
	// The confirmation ends the session; end_families was not asked: the
	// family lives on.
	f := formFields(t, p)
	done := b.post(e.url+"/oauth/logout", f)
	if done.status != http.StatusSeeOther || done.location.String() != "https://app.example/bye?state=bye-1" {
		t.Fatalf("confirmed logout: %d %v", done.status, done.location)
	}
	if p := b.authorize(authorizeParams("prompt", "none")); p.location.Query().Get("error") != "login_required" {
		t.Fatal("the session lives on after the logout")
	}
	if r := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}, "client_id": {webApp}}); r.status != 200 {
		t.Fatalf("the family ended without end_families: %d %v", r.status, r.body)
	}

	// With the hint and end_families: no page, and the families end.
	second := e.exchange(b.loginFlow(authorizeParams("scope", "openid")))
	p = logout(url.Values{"id_token_hint": {second.str("id_token")}, "post_logout_redirect_uri": {"https://app.example/bye"}, "end_families": {"true"}})
	if p.status != http.StatusSeeOther || p.location.String() != "https://app.example/bye" {
		t.Fatalf("logout with the hint: %d %v %.200s", p.status, p.location, p.body)
	}
	if r := e.post("/oauth/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.str("refresh_token")}, "client_id": {webApp}}); r.str("error") != "invalid_grant" {
		t.Fatalf("the session's family after logout with end_families: %d %v", r.status, r.body)
	}
	// A forged confirmation (a CSRF token not made for this browser) ends
	// nothing: the page asks again.
	b.loginFlow(authorizeParams())
	f.Set("csrf_token", "v1.9999999999.AAAA")
	if p := b.post(e.url+"/oauth/logout", f); p.status != http.StatusOK || p.location != nil || !strings.Contains(p.body, "<form") {
		t.Fatalf("a forged confirmation: %d %v", p.status, p.location)
	}
	b.codeFrom(b.authorize(authorizeParams("prompt", "none", "state", "alive")), webRedirect, "alive")
}

// The metadata is one document at the RFC 8414 and the OpenID Connect
// Discovery addresses, naming every endpoint of the code flow. Any page
// may read it and the JWKS (a browser app's discovery).
func TestDiscovery(t *testing.T) {
	e := newCodeEnv(t, nil)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/.well-known/jwks.json"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+path, nil)
		req.Header.Set("Origin", "https://app.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q, credentials %q; want * without credentials", path, got, resp.Header.Get("Access-Control-Allow-Credentials"))
		}
		if strings.HasSuffix(path, "jwks.json") {
			resp.Body.Close()
			continue
		}
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		for k, v := range map[string]any{
			"issuer": e.url, "authorization_endpoint": e.url + "/oauth/authorize", "userinfo_endpoint": e.url + "/userinfo",
			"end_session_endpoint": e.url + "/oauth/logout", "authorization_response_iss_parameter_supported": true,
		} {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v", path, k, m[k], v)
			}
		}
		for k, v := range map[string]string{"code_challenge_methods_supported": "S256", "id_token_signing_alg_values_supported": "RS256",
			"response_types_supported": "code", "grant_types_supported": "authorization_code"} {
			l, _ := m[k].([]any)
			if got := toStrings(l); !slices.Contains(got, v) || slices.Contains(got, "plain") {
				t.Errorf("%s: %s = %v, want it to hold %s (and never plain)", path, k, m[k], v)
			}
		}
	}
}

func toStrings(l []any) []string {
	out := make([]string, len(l))
	for i, x := range l {
		out[i], _ = x.(string)
	}
	return out
}

// A page calls /userinfo across origins (OpenID Connect Core §5.3: the
// UserInfo endpoint should support CORS): the preflight of its
// Authorization header, and the answer, allow a client's origin only.
func TestUserInfoCORS(t *testing.T) {
	e := newCodeEnv(t, nil)
	if err := e.store.CreateClient(t.Context(), store.Client{ID: "page", Grants: []string{"authorization_code"},
		RedirectURIs: []string{"http://localhost:5173/cb"}, Origins: []string{"http://localhost:5173"}}); err != nil {
		t.Fatal(err)
	}
	pre := e.request(http.MethodOptions, "/userinfo", nil, [2]string{}, "Origin", "http://localhost:5173",
		"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
	if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight from a client's origin: %d %v", pre.status, pre.header)
	}
	if other := e.request(http.MethodOptions, "/userinfo", nil, [2]string{}, "Origin", "https://evil.example",
		"Access-Control-Request-Method", "GET"); other.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin allowed: %v", other.header)
	}
	tok := e.exchange(e.agent(t).loginFlow(authorizeParams("scope", "openid"))).str("access_token")
	a := e.request(http.MethodGet, "/userinfo", nil, [2]string{}, "Origin", "http://localhost:5173", "Authorization", "Bearer "+tok)
	if a.status != http.StatusOK || a.header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
		t.Fatalf("userinfo from a client's origin: %d %v", a.status, a.header)
	}
}
