package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// browser drives the example over HTTP as the page and the browser
// would: it keeps cookies and does not follow redirects.
type browser struct {
	t   *testing.T
	hc  *http.Client
	url string
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.url + path
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.url) // as fetch sends it from the page
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// token posts form to the token endpoint and decodes the 200 answer.
func (b *browser) token(form url.Values) map[string]any {
	b.t.Helper()
	resp, body := b.do(http.MethodPost, "/oauth/token", form)
	var out map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		b.t.Fatalf("token endpoint: %d %s", resp.StatusCode, body)
	}
	return out
}

var (
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
)

// The example runs the whole login of its page: discovery, the login
// page as alice, the redirect to its own /callback with a code, the
// exchange with PKCE (an access token of -ttl, a refresh token, an ID
// token), and refreshes, each giving a new access token.
func TestLoginFlow(t *testing.T) {
	web := fstest.MapFS{"index.js": {Data: []byte("export {}")}, "login.js": {Data: []byte("export {}")}}
	a, err := start(t.Context(), "127.0.0.1:0", web, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, url: a.URL, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}

	// The page and what it imports.
	if resp, body := b.do(http.MethodGet, "/", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `src="/app/app.js"`) || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("page: %d %.200s", resp.StatusCode, body)
	}
	if resp, body := b.do(http.MethodGet, "/app/app.js", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `from "/web/login.js"`) {
		t.Fatalf("app.js: %d %.200s", resp.StatusCode, body)
	}
	if resp, _ := b.do(http.MethodGet, "/web/login.js", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/web/login.js: %d", resp.StatusCode)
	}

	// Discovery, as login() does it.
	_, body := b.do(http.MethodGet, "/.well-known/openid-configuration", nil)
	var meta struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
	}
	if err := json.Unmarshal([]byte(body), &meta); err != nil || meta.Issuer != a.URL || meta.TokenEndpoint != a.URL+"/oauth/token" {
		t.Fatalf("discovery: %v %s", err, body)
	}

	// login(): to the authorization endpoint with PKCE; the login page.
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {a.URL + "/callback"}, "scope": {"openid"},
		"state": {"s1"}, "nonce": {"n1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, body := b.do(http.MethodGet, meta.AuthorizationEndpoint+"?"+q.Encode(), nil)
	action := formAction.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || action == nil || !strings.Contains(body, `name="password"`) {
		t.Fatalf("want the login page, got %d: %.300s", resp.StatusCode, body)
	}
	form := url.Values{"username": {username}, "password": {userPass}}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	resp, body = b.do(http.MethodPost, html.UnescapeString(action[1]), form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %s: %d %.300s", username, resp.StatusCode, body)
	}
	resp, _ = b.do(http.MethodGet, resp.Header.Get("Location"), nil)
	cb, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || cb.Query().Get("code") == "" || cb.Query().Get("state") != "s1" || cb.Query().Get("iss") != a.URL {
		t.Fatalf("want a redirect with a code, got %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	code := cb.Query().Get("code")
	cb.RawQuery = ""
	if cb.String() != a.URL+"/callback" {
		t.Fatalf("redirected to %s, not the app's /callback", cb)
	}
	if resp, body := b.do(http.MethodGet, "/callback?"+url.Values{"code": {code}, "state": {"s1"}}.Encode(), nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "app.js") {
		t.Fatalf("callback page: %d", resp.StatusCode)
	}

	// handleRedirect(): the exchange, then the manager's refreshes.
	tok := b.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.URL + "/callback"},
		"code_verifier": {verifier}, "client_id": {clientID}})
	if tok["access_token"] == nil || tok["id_token"] == nil || tok["expires_in"] != 30.0 {
		t.Fatalf("exchange: %v", tok)
	}
	for range 2 {
		rt, _ := tok["refresh_token"].(string)
		next := b.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
		if next["access_token"] == tok["access_token"] || next["refresh_token"] == rt || next["refresh_token"] == nil {
			t.Fatalf("refresh gave no new tokens: %v", next)
		}
		tok = next
	}
}

// Without the built browser package, the example says how to build it.
func TestCheckWeb(t *testing.T) {
	dir := t.TempDir()
	if err := checkWeb(dir); !errors.Is(err, ErrNoWebBuild) || !strings.Contains(err.Error(), "make example") {
		t.Fatalf("empty dir: %v", err)
	}
	for _, f := range []string{"index.js", "login.js"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkWeb(dir); err != nil {
		t.Fatalf("built: %v", err)
	}
}
