package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// browser is an HTTP client with a cookie jar, as a page of pageOrigin
// is: every request carries that Origin.
type browser struct {
	t      *testing.T
	e      *env
	client *http.Client
}

func newBrowser(t *testing.T, e *env) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, e: e, client: &http.Client{Jar: jar}}
}

// post sends form to path from the page, with the headers (pairs).
func (b *browser) post(path string, form url.Values, headers ...string) answer {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodPost, b.e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", pageOrigin)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			b.t.Fatalf("answer is not JSON: %q", raw)
		}
	}
	return a
}

// cookie returns the refresh cookie the jar holds for the server, or "".
func (b *browser) cookie() string {
	u, _ := url.Parse(b.e.url)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "__Host-tokend-rt" {
			return c.Value
		}
	}
	return ""
}

var setCookieRE = regexp.MustCompile(`^__Host-tokend-rt=(rt2_[A-Za-z0-9_-]+); Path=/; Max-Age=([0-9]+); HttpOnly; Secure; SameSite=Strict$`)

// A cookie-mode client's page: the first refresh exchanges the minted
// refresh token for the cookie; later refreshes present the cookie alone
// and rotate it; the body never holds a refresh token. Without X-Tokend,
// or from another page, the cookie is not spent; a revocation ends the
// family and clears the cookie.
func TestCookieMode(t *testing.T) {
	e := browserEnv(t, true)
	ctx := t.Context()
	minted := e.mintFor("alice") // server to server: in the body, as always
	e.clock.Advance(time.Hour)
	b := newBrowser(t, e)

	first := b.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {minted.str("refresh_token")}})
	if first.status != http.StatusOK || first.str("access_token") == "" || first.body["refresh_token"] != nil {
		t.Fatalf("first exchange: %d %v", first.status, first.body)
	}
	sc := first.header.Values("Set-Cookie")
	m := setCookieRE.FindStringSubmatch(strings.Join(sc, "\n"))
	// The family started at the mint, an hour ago; unused, this token
	// ends 30 days from now (the default idle lifetime, well within the
	// 90-day absolute one).
	if len(sc) != 1 || m == nil || m[2] != "2592000" {
		t.Fatalf("Set-Cookie %q; want the refresh token, Max-Age %d, HttpOnly, Secure, SameSite=Strict", sc, 30*24*3600)
	}
	if b.cookie() != m[1] {
		t.Fatalf("the jar holds %q, not the token set", b.cookie())
	}

	// Refresh by cookie: the cookie rotates.
	cookieRefresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}}
	second := b.post("/oauth/token", cookieRefresh, "X-Tokend", "1")
	m2 := setCookieRE.FindStringSubmatch(second.header.Get("Set-Cookie"))
	if second.status != http.StatusOK || second.body["refresh_token"] != nil || m2 == nil || m2[1] == m[1] || b.cookie() != m2[1] {
		t.Fatalf("refresh by cookie: %d %v %q", second.status, second.body, second.header.Get("Set-Cookie"))
	}
	if second.header.Get("Access-Control-Allow-Origin") != pageOrigin || second.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("refresh by cookie: CORS headers %v", corsOf(second.header))
	}

	// Without X-Tokend (a form a cross-site page could post), from no
	// page, from another page: refused, and the cookie is left unspent.
	if a := b.post("/oauth/token", cookieRefresh); a.status != http.StatusBadRequest || a.str("error") != "invalid_request" ||
		a.str("error_description") != "cookie refresh needs the X-Tokend header" {
		t.Errorf("without X-Tokend: %d %v", a.status, a.body)
	}
	if a := b.post("/oauth/token", cookieRefresh, "X-Tokend", "yes"); a.status != http.StatusBadRequest {
		t.Errorf("X-Tokend: yes: %d %v", a.status, a.body)
	}
	if a := b.post("/oauth/token", cookieRefresh, "X-Tokend", "1", "Origin", "https://evil.example"); a.status != http.StatusUnauthorized ||
		a.str("error") != "invalid_client" || a.str("error_description") != "origin not allowed for this client" {
		t.Errorf("from another page: %d %v", a.status, a.body)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/oauth/token", strings.NewReader(cookieRefresh.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Tokend", "1")
	req.AddCookie(&http.Cookie{Name: "__Host-tokend-rt", Value: b.cookie()})
	if a := e.do(req); a.status != http.StatusBadRequest || a.str("error") != "invalid_request" || !strings.Contains(a.str("error_description"), "Origin") {
		t.Errorf("cookie without Origin: %d %v", a.status, a.body)
	}
	if a := b.post("/oauth/token", cookieRefresh, "X-Tokend", "1"); a.status != http.StatusOK {
		t.Fatalf("the cookie was spent by the refusals: %d %v", a.status, a.body)
	}

	// A revocation without X-Tokend changes nothing; with it, it ends the
	// family and clears the cookie.
	if a := b.post("/oauth/revoke", url.Values{"client_id": {"web"}}); a.status != http.StatusBadRequest ||
		a.str("error_description") != "cookie revocation needs the X-Tokend header" || b.cookie() == "" {
		t.Errorf("revocation without X-Tokend: %d %v", a.status, a.body)
	}
	rt := b.cookie()
	a := b.post("/oauth/revoke", url.Values{"client_id": {"web"}}, "X-Tokend", "1")
	if a.status != http.StatusOK || a.header.Get("Set-Cookie") != "__Host-tokend-rt=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict" || b.cookie() != "" {
		t.Fatalf("revocation: %d %q, jar %q", a.status, a.header.Get("Set-Cookie"), b.cookie())
	}
	fams, err := e.store.ListFamilies(ctx, store.FamilyFilter{ClientID: "web"})
	if err != nil || len(fams) != 1 || fams[0].RevokedAt.IsZero() || fams[0].RevokeReason != "logout" {
		t.Fatalf("families after the revocation: %+v %v", fams, err)
	}
	// The revoked token, presented by a page that kept it, is refused;
	// with no cookie the page is told to log in again.
	if a := b.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {rt}}); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
		t.Errorf("the revoked token: %d %v", a.status, a.body)
	}
	if a := b.post("/oauth/token", cookieRefresh, "X-Tokend", "1"); a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" {
		t.Errorf("refresh with no cookie: %d %v", a.status, a.body)
	}
	// Revoking again, with no cookie, is 200 and clears it again.
	if a := b.post("/oauth/revoke", url.Values{"client_id": {"web"}}, "X-Tokend", "1"); a.status != http.StatusOK || !strings.Contains(a.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("revocation with no cookie: %d %v", a.status, a.header)
	}
}

// Revoking with a token also clears the cookie of a cookie-mode client; a
// client not in cookie mode gets its refresh token in the body and no
// cookie, and still needs a token to revoke.
func TestCookieModeRevokeByToken(t *testing.T) {
	e := browserEnv(t, true)
	b := newBrowser(t, e)
	minted := e.mintFor("alice")
	if a := b.post("/oauth/revoke", url.Values{"client_id": {"web"}, "token": {minted.str("refresh_token")}}); a.status != http.StatusOK ||
		!strings.Contains(a.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("revocation by token: %d %v", a.status, a.header)
	}
	if a := b.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {minted.str("refresh_token")}}); a.status != http.StatusBadRequest {
		t.Errorf("refresh after the revocation by token: %d %v", a.status, a.body)
	}

	plain := browserEnv(t, false)
	pb := newBrowser(t, plain)
	rt := plain.mintFor("alice").str("refresh_token")
	a := pb.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {rt}})
	if a.status != http.StatusOK || a.str("refresh_token") == "" || a.header.Get("Set-Cookie") != "" {
		t.Errorf("refresh of a client not in cookie mode: %d %v %v", a.status, a.body, a.header)
	}
	if a := pb.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}}, "X-Tokend", "1"); a.status != http.StatusBadRequest ||
		a.str("error_description") != "missing refresh_token" {
		t.Errorf("refresh without a token, not in cookie mode: %d %v", a.status, a.body)
	}
	if a := pb.post("/oauth/revoke", url.Values{"client_id": {"web"}}, "X-Tokend", "1"); a.status != http.StatusBadRequest ||
		a.str("error_description") != "missing token" || a.header.Get("Set-Cookie") != "" {
		t.Errorf("revocation without a token, not in cookie mode: %d %v", a.status, a.body)
	}
}

// A password login of a confidential client in cookie mode also puts the
// refresh token in the cookie; client_credentials, which has none, sets
// no cookie.
func TestCookieModePasswordLogin(t *testing.T) {
	e := browserEnv(t, true)
	if err := e.store.CreateClient(t.Context(), store.Client{ID: "portal", SecretHash: server.HashClientSecret("portal-secret"),
		Grants: []string{"password", "refresh_token", "client_credentials"}, Origins: []string{pageOrigin}, Cookie: true}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e)
	a := b.post("/oauth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"},
		"client_id": {"portal"}, "client_secret": {"portal-secret"}})
	m := setCookieRE.FindStringSubmatch(a.header.Get("Set-Cookie"))
	if a.status != http.StatusOK || a.body["refresh_token"] != nil || m == nil || m[2] != "2592000" || b.cookie() != m[1] {
		t.Fatalf("password login in cookie mode: %d %v %q", a.status, a.body, a.header.Get("Set-Cookie"))
	}
	a = b.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"portal"}, "client_secret": {"portal-secret"}})
	if a.status != http.StatusOK || a.header.Get("Set-Cookie") != "" {
		t.Errorf("client_credentials in cookie mode: %d %v", a.status, a.header)
	}
}

// A cookie whose family has ended (here: its token replayed after its
// successor was used, which is reuse) is answered invalid_grant and
// cleared, so the browser does not keep a dead cookie; a refusal that
// says nothing of the family (a missing X-Tokend) keeps it.
func TestCookieClearedWhenFamilyEnds(t *testing.T) {
	e := browserEnv(t, true)
	b := newBrowser(t, e)
	minted := e.mintFor("alice")
	if a := b.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {minted.str("refresh_token")}}); a.status != http.StatusOK {
		t.Fatalf("first exchange: %d %v", a.status, a.body)
	}
	old := b.cookie()
	cookieRefresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}}
	if a := b.post("/oauth/token", cookieRefresh, "X-Tokend", "1"); a.status != http.StatusOK {
		t.Fatalf("refresh by cookie: %d %v", a.status, a.body)
	}
	if a := b.post("/oauth/token", cookieRefresh, "X-Tokend", "1"); a.status != http.StatusOK {
		t.Fatalf("second refresh by cookie: %d %v", a.status, a.body)
	}
	if a := b.post("/oauth/token", cookieRefresh); a.status != http.StatusBadRequest || a.header.Get("Set-Cookie") != "" || b.cookie() == "" {
		t.Fatalf("without X-Tokend: %d %v, Set-Cookie %q; want the cookie kept", a.status, a.body, a.header.Get("Set-Cookie"))
	}
	// The old cookie value, replayed: reuse ends the family, and the cookie goes.
	u, _ := url.Parse(e.url)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-tokend-rt", Value: old, Path: "/"}})
	a := b.post("/oauth/token", cookieRefresh, "X-Tokend", "1")
	if a.status != http.StatusBadRequest || a.str("error") != "invalid_grant" ||
		a.header.Get("Set-Cookie") != "__Host-tokend-rt=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict" || b.cookie() != "" {
		t.Fatalf("replayed cookie: %d %v, Set-Cookie %q, jar %q; want invalid_grant and the cookie cleared", a.status, a.body, a.header.Get("Set-Cookie"), b.cookie())
	}
}
