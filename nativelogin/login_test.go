package nativelogin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/nativelogin"
	"github.com/tokend/tokend/refresh"
)

// saved records what OnRefresh persisted.
type saved struct {
	mu   sync.Mutex
	toks []string
}

func (s *saved) onRefresh(_ context.Context, tok *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.toks = append(s.toks, tok.RefreshToken)
	return nil
}

func (s *saved) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.toks...)
}

// setup returns a fake provider, a Config for it whose browser follows
// the flow at once, and the channel of the pages that browser ends on.
func setup(t *testing.T, scopes ...string) (*fakeProvider, nativelogin.Config, chan page, *saved) {
	t.Helper()
	idp := newFakeProvider("cli")
	t.Cleanup(idp.Close)
	pages := make(chan page, 4)
	s := &saved{}
	cfg := nativelogin.Config{
		Issuer:      idp.URL,
		ClientID:    "cli",
		Scopes:      scopes,
		HTTPClient:  idp.Client(),
		OpenBrowser: browser(idp.Client(), pages),
		Prompt:      failWriter{t},
		Options:     &refresh.Options{OnRefresh: s.onRefresh},
	}
	return idp, cfg, pages, s
}

// failWriter fails the test if the URL is printed although the browser opened.
type failWriter struct{ t *testing.T }

func (w failWriter) Write(p []byte) (int, error) {
	w.t.Errorf("printed to Prompt: %q", p)
	return len(p), nil
}

func TestLoginEndToEnd(t *testing.T) {
	idp, cfg, pages, s := setup(t, "openid", "offline_access")
	res, err := nativelogin.Login(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Source.Close()

	p := <-pages
	if p.err != nil || p.status != http.StatusOK || !strings.Contains(p.body, "You can close this tab") {
		t.Errorf("browser page: %d %q %v", p.status, p.body, p.err)
	}
	if strings.Contains(p.body, res.Token.AccessToken) || strings.Contains(p.body, "code-") {
		t.Errorf("the page shows a secret: %q", p.body)
	}
	ru, _ := url.Parse(idp.lastRedirectURI())
	if ru.Scheme != "http" || ru.Hostname() != "127.0.0.1" || ru.Port() == "0" || ru.Path != "/callback" {
		t.Errorf("redirect URI %q is not a loopback IP literal with a random port", ru)
	}
	if !portClosed(ru.String()) {
		t.Error("the redirect listener is still open after Login")
	}
	if ex, _ := idp.counts(); ex != 1 {
		t.Errorf("%d code exchanges, want 1", ex)
	}
	if res.IDToken == "" || res.IDClaims["sub"] != "alice" {
		t.Errorf("ID token %q, claims %v", res.IDToken, res.IDClaims)
	}
	tok, err := res.Source.TokenContext(t.Context())
	if err != nil || tok.AccessToken != res.Token.AccessToken {
		t.Fatalf("Source serves %v, %v; want the login's token", tok, err)
	}
	if got := s.all(); len(got) != 1 || got[0] != "refresh-1" {
		t.Fatalf("OnRefresh saw %q after the login, want [refresh-1]", got)
	}

	// A rejected token makes the Source refresh at once: the rotated
	// refresh token reaches OnRefresh before the token is served.
	res.Source.Invalidate(tok)
	tok2, err := res.Source.FreshToken(t.Context())
	if err != nil || tok2.AccessToken == tok.AccessToken {
		t.Fatalf("after Invalidate: %v, %v", tok2, err)
	}
	if got := s.all(); len(got) != 2 || got[1] != "refresh-2" {
		t.Errorf("OnRefresh saw %q, want [refresh-1 refresh-2]", got)
	}
	if _, rf := idp.counts(); rf != 1 {
		t.Errorf("%d refresh grants, want 1", rf)
	}
}

// A callback that fails its checks ends the login with the right error,
// and no code is exchanged.
func TestLoginRefusesCallback(t *testing.T) {
	cases := []struct {
		name         string
		issSupported bool
		edit         func(q url.Values)
		want         error
	}{
		{"state mismatch", true, func(q url.Values) { q.Set("state", "forged") }, nativelogin.ErrStateMismatch},
		{"state missing", true, func(q url.Values) { q.Del("state") }, nativelogin.ErrStateMismatch},
		{"iss mismatch", true, func(q url.Values) { q.Set("iss", "https://evil.example") }, nativelogin.ErrIssuerMismatch},
		{"iss mismatch when not promised", false, func(q url.Values) { q.Set("iss", "https://evil.example") }, nativelogin.ErrIssuerMismatch},
		{"iss missing when promised", true, func(q url.Values) { q.Del("iss") }, nativelogin.ErrIssuerMismatch},
		{"parameter repeated", true, func(q url.Values) { q.Add("code", "other") }, nativelogin.ErrMalformedCallback},
		{"no code", true, func(q url.Values) { q.Del("code") }, nativelogin.ErrMalformedCallback},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			idp, cfg, pages, s := setup(t)
			idp.issSupported = tc.issSupported
			idp.redirect = tc.edit
			res, err := nativelogin.Login(t.Context(), cfg)
			if !errors.Is(err, tc.want) || res != nil {
				t.Fatalf("Login: %v, %v; want %v", res, err, tc.want)
			}
			if p := <-pages; p.status != http.StatusBadRequest || !strings.Contains(p.body, "failed") {
				t.Errorf("browser page: %d %q", p.status, p.body)
			}
			if ex, _ := idp.counts(); ex != 0 {
				t.Errorf("%d code exchanges, want 0", ex)
			}
			if len(s.all()) != 0 {
				t.Error("OnRefresh called")
			}
		})
	}
}

// Without the promise of RFC 9207, a callback without iss is accepted.
func TestLoginIssOptional(t *testing.T) {
	idp, cfg, _, _ := setup(t)
	idp.issSupported = false
	idp.redirect = func(q url.Values) { q.Del("iss") }
	res, err := nativelogin.Login(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res.Source.Close()
}

func TestLoginProviderError(t *testing.T) {
	idp, cfg, _, _ := setup(t)
	idp.redirect = func(q url.Values) {
		q.Del("code")
		q.Set("error", "access_denied")
		q.Set("error_description", "The user said no.\nforged log line")
		q.Set("error_uri", "https://auth.example/help")
	}
	_, err := nativelogin.Login(t.Context(), cfg)
	var ae *nativelogin.AuthorizationError
	if !errors.As(err, &ae) {
		t.Fatalf("Login: %v, want an *AuthorizationError", err)
	}
	if ae.Code != "access_denied" || ae.Description != "The user said no.\nforged log line" || ae.URI != "https://auth.example/help" {
		t.Errorf("got %+v", ae)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error string has a raw newline: %q", err)
	}
	if ex, _ := idp.counts(); ex != 0 {
		t.Errorf("%d code exchanges, want 0", ex)
	}
}

// promptURLs sends each URL printed to Prompt on a channel.
type promptURLs chan string

func (c promptURLs) Write(p []byte) (int, error) {
	for _, f := range strings.Fields(string(p)) {
		if strings.HasPrefix(f, "http") {
			c <- f
		}
	}
	return len(p), nil
}

// With no browser, the URL is printed, and the user who opens it by hand
// completes the login.
func TestLoginPrintsURLWithoutBrowser(t *testing.T) {
	idp, cfg, _, _ := setup(t)
	printed := make(promptURLs, 1)
	cfg.Prompt = printed
	cfg.OpenBrowser = func(context.Context, string) error { return nativelogin.ErrNoBrowser }
	user := make(chan page, 1)
	go func() { user <- visit(t.Context(), idp.Client(), <-printed) }()
	res, err := nativelogin.Login(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res.Source.Close()
	if p := <-user; p.status != http.StatusOK {
		t.Errorf("the user's page: %d %q %v", p.status, p.body, p.err)
	}
}

// A second request to the redirect URI (a reload, a replay) is answered
// and ignored: one code exchange.
func TestLoginSecondCallbackIgnored(t *testing.T) {
	idp, cfg, _, _ := setup(t)
	var second page
	cfg.OpenBrowser = func(ctx context.Context, u string) error {
		first := visit(ctx, idp.Client(), u)
		if first.status != http.StatusOK {
			return fmt.Errorf("first callback: %d %v", first.status, first.err)
		}
		second = visit(ctx, idp.Client(), first.url) // the same callback again
		return nil
	}
	res, err := nativelogin.Login(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res.Source.Close()
	if second.status != http.StatusConflict || !strings.Contains(second.body, "already finished") {
		t.Errorf("second callback: %d %q %v", second.status, second.body, second.err)
	}
	if ex, _ := idp.counts(); ex != 1 {
		t.Errorf("%d code exchanges, want 1", ex)
	}
}

// Cancelling ctx stops the wait and closes the listener.
func TestLoginCancel(t *testing.T) {
	idp, cfg, _, _ := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var redirect string
	cfg.OpenBrowser = func(_ context.Context, u string) error {
		au, _ := url.Parse(u)
		redirect = au.Query().Get("redirect_uri")
		if portClosed(redirect) {
			t.Error("the redirect listener is not open while the browser is")
		}
		cancel() // the user gives up
		return nil
	}
	_, err := nativelogin.Login(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Login: %v, want context.Canceled", err)
	}
	if !portClosed(redirect) {
		t.Errorf("%s still accepts connections", redirect)
	}
	if ex, _ := idp.counts(); ex != 0 {
		t.Errorf("%d code exchanges, want 0", ex)
	}
}

func TestLoginIDToken(t *testing.T) {
	cases := []struct {
		name string
		edit func(c map[string]any)
		want []error
	}{
		{"nonce mismatch", func(c map[string]any) { c["nonce"] = "replayed" }, []error{nativelogin.ErrIDToken}},
		{"nonce missing", func(c map[string]any) { delete(c, "nonce") }, []error{nativelogin.ErrIDToken}},
		{"iss", func(c map[string]any) { c["iss"] = "https://evil.example" }, []error{nativelogin.ErrIDToken, nativelogin.ErrIssuerMismatch}},
		{"aud", func(c map[string]any) { c["aud"] = []string{"other"} }, []error{nativelogin.ErrIDToken}},
		{"azp", func(c map[string]any) { c["aud"] = []string{"cli", "other"}; c["azp"] = "other" }, []error{nativelogin.ErrIDToken}},
		{"aud array", func(c map[string]any) { c["aud"] = []string{"cli", "api"}; c["azp"] = "cli" }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			idp, cfg, _, s := setup(t, "openid")
			idp.idClaims = tc.edit
			res, err := nativelogin.Login(t.Context(), cfg)
			if res != nil {
				res.Source.Close()
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("Login: %v, want %v", err, w)
				}
			}
			if tc.want == nil && err != nil {
				t.Errorf("Login: %v", err)
			}
			if tc.want != nil && len(s.all()) != 0 {
				t.Error("OnRefresh saw a token of a refused login")
			}
		})
	}
}

// With the openid scope, a token answer without an ID token is refused
// (OpenID Connect Core 1.0 §3.1.3.3).
func TestLoginIDTokenMissing(t *testing.T) {
	idp, cfg, _, s := setup(t, "openid")
	idp.noIDToken = true
	if res, err := nativelogin.Login(t.Context(), cfg); !errors.Is(err, nativelogin.ErrIDToken) || res != nil {
		t.Fatalf("Login: %v, %v; want ErrIDToken", res, err)
	}
	if len(s.all()) != 0 {
		t.Error("OnRefresh saw a token of a refused login")
	}
}

func TestDiscovery(t *testing.T) {
	t.Run("RFC 8414 fallback", func(t *testing.T) {
		idp, cfg, _, _ := setup(t)
		idp.oidc = false
		res, err := nativelogin.Login(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		res.Source.Close()
	})
	t.Run("issuer mismatch", func(t *testing.T) {
		idp, cfg, _, _ := setup(t)
		idp.issuer = idp.URL + "/other"
		cfg.OpenBrowser = func(context.Context, string) error {
			t.Error("browser opened for a server that is not the issuer")
			return nil
		}
		if _, err := nativelogin.Login(t.Context(), cfg); !errors.Is(err, nativelogin.ErrIssuerMismatch) {
			t.Fatalf("Login: %v, want ErrIssuerMismatch", err)
		}
	})
	t.Run("plain http issuer", func(t *testing.T) {
		_, cfg, _, _ := setup(t)
		cfg.Issuer = "http://auth.example.com"
		if _, err := nativelogin.Login(t.Context(), cfg); err == nil {
			t.Fatal("Login accepted an http issuer off loopback")
		}
	})
}

func TestListenAddrMustBeLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "localhost:0", ":0", "192.0.2.1:0"} {
		_, cfg, _, _ := setup(t)
		cfg.ListenAddr = addr
		if _, err := nativelogin.Login(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("ListenAddr %q: %v", addr, err)
		}
	}
}

// A later run starts from the saved refresh token.
func TestResume(t *testing.T) {
	idp, cfg, _, s := setup(t)
	res, err := nativelogin.Login(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res.Source.Close()

	src, err := nativelogin.Resume(t.Context(), cfg, &oauth2.Token{RefreshToken: s.all()[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.TokenContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := s.all(); len(got) != 2 || got[1] != "refresh-2" {
		t.Errorf("OnRefresh saw %q, want [refresh-1 refresh-2]", got)
	}
	if _, rf := idp.counts(); rf != 1 {
		t.Errorf("%d refresh grants, want 1", rf)
	}
}
