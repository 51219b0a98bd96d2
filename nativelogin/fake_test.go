package nativelogin_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
)

// fakeProvider is an authorization server in the test process: discovery,
// an authorization endpoint that logs the user in at once and redirects,
// and a token endpoint for the code (checking PKCE S256) and refresh
// grants, rotating refresh tokens.
type fakeProvider struct {
	*httptest.Server
	clientID string
	// oidc serves /.well-known/openid-configuration; without it only the
	// RFC 8414 document is served.
	oidc bool
	// issSupported sets authorization_response_iss_parameter_supported.
	issSupported bool
	// issuer overrides the issuer the metadata names.
	issuer string
	// redirect, if set, edits the authorization response's query.
	redirect func(q url.Values)
	// idClaims, if set, edits the ID token's claims.
	idClaims func(c map[string]any)
	// noIDToken leaves the ID token out even for the openid scope.
	noIDToken bool

	mu          sync.Mutex
	codes       map[string]grant // code → its authorization request
	refresh     string           // the current refresh token
	n           int              // tokens issued
	exchanges   int              // code exchanges answered with tokens
	refreshes   int              // refresh grants answered with tokens
	redirectURI string           // of the latest authorization request
}

type grant struct {
	redirectURI, challenge, nonce, scope string
}

func newFakeProvider(clientID string) *fakeProvider {
	p := &fakeProvider{clientID: clientID, oidc: true, issSupported: true, codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if !p.oidc {
			http.NotFound(w, r)
			return
		}
		p.metadata(w)
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) { p.metadata(w) })
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.Server = httptest.NewServer(mux)
	return p
}

func (p *fakeProvider) metadata(w http.ResponseWriter) {
	iss := p.URL
	if p.issuer != "" {
		iss = p.issuer
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                           iss,
		"authorization_endpoint":           p.URL + "/authorize",
		"token_endpoint":                   p.URL + "/token",
		"code_challenge_methods_supported": []string{"S256"},
		"authorization_response_iss_parameter_supported": p.issSupported,
	})
}

// authorize checks the request as tokend's endpoint does (PKCE S256
// required, a loopback redirect URI on any port) and redirects with a code.
func (p *fakeProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ru, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || ru.Scheme != "http" || ru.Hostname() != "127.0.0.1" || ru.Port() == "" || ru.Port() == "0" || ru.Path != "/callback" {
		http.Error(w, "redirect_uri is not a loopback URI with a port", http.StatusBadRequest)
		return
	}
	if q.Get("response_type") != "code" || q.Get("client_id") != p.clientID || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("state") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	code := fmt.Sprintf("code-%d", len(p.codes)+1)
	p.codes[code] = grant{redirectURI: ru.String(), challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), scope: q.Get("scope")}
	p.redirectURI = ru.String()
	p.mu.Unlock()
	a := url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {p.URL}}
	if p.redirect != nil {
		p.redirect(a)
	}
	ru.RawQuery = a.Encode()
	http.Redirect(w, r, ru.String(), http.StatusFound)
}

func (p *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.PostFormValue("client_id") != p.clientID {
		oauthError(w, "invalid_client")
		return
	}
	switch r.PostFormValue("grant_type") {
	case "authorization_code":
		g, ok := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !ok || g.redirectURI != r.PostFormValue("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			oauthError(w, "invalid_grant")
			return
		}
		p.exchanges++
		p.issue(w, g)
	case "refresh_token":
		if p.refresh == "" || r.PostFormValue("refresh_token") != p.refresh {
			oauthError(w, "invalid_grant")
			return
		}
		p.refreshes++
		p.issue(w, grant{})
	default:
		oauthError(w, "unsupported_grant_type")
	}
}

// issue answers with a new access token (a JWT whose claims the example
// prints; unsigned, as a fake's may be) and a new refresh token.
func (p *fakeProvider) issue(w http.ResponseWriter, g grant) {
	p.n++
	p.refresh = fmt.Sprintf("refresh-%d", p.n)
	body := map[string]any{
		"access_token":  jwt(map[string]any{"iss": p.URL, "sub": "alice", "aud": p.clientID, "n": p.n}),
		"token_type":    "Bearer",
		"expires_in":    3600,
		"refresh_token": p.refresh,
	}
	if strings.Contains(" "+g.scope+" ", " openid ") && !p.noIDToken {
		c := map[string]any{"iss": p.URL, "sub": "alice", "aud": p.clientID, "nonce": g.nonce}
		if p.idClaims != nil {
			p.idClaims(c)
		}
		body["id_token"] = jwt(c)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(body)
}

func (p *fakeProvider) counts() (exchanges, refreshes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exchanges, p.refreshes
}

func (p *fakeProvider) lastRedirectURI() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.redirectURI
}

func oauthError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func jwt(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(b) + "." + enc([]byte("sig"))
}

// browser is a scripted user with a browser: it follows the authorization
// URL through the redirect to the loopback listener and sends each page
// it ends on to pages.
func browser(client *http.Client, pages chan<- page) func(ctx context.Context, u string) error {
	return func(ctx context.Context, u string) error {
		pages <- visit(ctx, client, u)
		return nil
	}
}

// page is where a browser ended up.
type page struct {
	url    string // the last URL (the callback's)
	status int
	body   string
	err    error
}

func visit(ctx context.Context, client *http.Client, u string) page {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page{err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return page{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{url: resp.Request.URL.String(), status: resp.StatusCode, body: string(b)}
}

// portClosed reports whether nothing listens on the host:port of u.
func portClosed(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	c, err := net.Dial("tcp", pu.Host)
	if err != nil {
		return true
	}
	c.Close()
	return false
}
