// Command rp-go is an independent OpenID Connect relying party for the
// interop test web/e2e/rp-go-oidc.test.mjs: github.com/coreos/go-oidc/v3
// with golang.org/x/oauth2, used as their documentation shows, against a
// real tokend. It is a confidential client (client_secret_basic).
//
// It serves its redirect URI on 127.0.0.1 and prints one JSON line
// {"auth_url": ...} on stdout; the test sends a browser there. After the
// callback it exchanges the code with the PKCE verifier, verifies the ID
// token (go-oidc's verifier: signature against the JWKS, iss, aud, exp;
// then nonce and at_hash), refreshes through an oauth2.TokenSource,
// calls userinfo, and prints a JSON summary line with the end-session
// URL, then exits 0. Any failure exits 1 with the reason on stderr (never
// a token).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func main() {
	var c rpConfig
	flag.StringVar(&c.issuer, "issuer", "", "the OpenID Provider's issuer URL (required)")
	flag.StringVar(&c.clientID, "client-id", "", "the client id (required)")
	flag.StringVar(&c.secret, "client-secret", os.Getenv("RP_CLIENT_SECRET"), "the client secret (default $RP_CLIENT_SECRET)")
	flag.StringVar(&c.postLogout, "post-logout-redirect-uri", "", "post_logout_redirect_uri of the end-session URL")
	timeout := flag.Duration("timeout", time.Minute, "longest wait for the browser")
	flag.Parse()
	if c.issuer == "" || c.clientID == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, c, json.NewEncoder(os.Stdout)); err != nil {
		fmt.Fprintln(os.Stderr, "rp-go:", err)
		os.Exit(1)
	}
}

// rpConfig is the relying party's registration and the provider it uses.
type rpConfig struct {
	issuer, clientID, secret, postLogout string
}

// summary is what the test asserts; it holds no token, only facts about them.
type summary struct {
	IDTokenVerified     bool           `json:"id_token_verified"`
	Subject             string         `json:"sub"`
	NonceMatched        bool           `json:"nonce_matched"`
	AccessTokenHashOK   bool           `json:"at_hash_ok"`
	IDClaims            map[string]any `json:"id_claims"`
	HadRefreshToken     bool           `json:"had_refresh_token"`
	RefreshedAccess     bool           `json:"refreshed_access_differs"`
	RefreshTokenRotated bool           `json:"refresh_token_rotated"`
	RefreshedIDVerified bool           `json:"refreshed_id_token_verified"`
	UserInfoSubject     string         `json:"userinfo_sub"`
	EndSessionURL       string         `json:"end_session_url"`
	LogoutState         string         `json:"logout_state"`
}

// run is the whole relying party: discovery, authorization, exchange,
// verification, refresh, userinfo.
func run(ctx context.Context, c rpConfig, out *json.Encoder) error {
	provider, err := oidc.NewProvider(ctx, c.issuer)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	oc := &oauth2.Config{
		ClientID: c.clientID, ClientSecret: c.secret, Endpoint: provider.Endpoint(),
		RedirectURL: "http://" + ln.Addr().String() + "/callback",
		Scopes:      []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess},
	}
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	authURL := oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	if err := out.Encode(map[string]string{"auth_url": authURL}); err != nil {
		return err
	}
	code, err := awaitCallback(ctx, ln, state, c.issuer)
	if err != nil {
		return err
	}
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	verify := provider.Verifier(&oidc.Config{ClientID: c.clientID})
	s, rawID, err := checkLogin(ctx, verify, tok, nonce)
	if err != nil {
		return err
	}
	if err := refreshAndUserInfo(ctx, provider, oc, verify, tok, &s); err != nil {
		return err
	}
	if s.EndSessionURL, s.LogoutState, err = endSessionURL(provider, rawID, c.postLogout); err != nil {
		return err
	}
	return out.Encode(s)
}

// awaitCallback serves the redirect URI on ln until the first callback,
// answers it, and returns its code once state and iss (RFC 9207) match.
func awaitCallback(ctx context.Context, ln net.Listener, state, issuer string) (string, error) {
	got := make(chan url.Values, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case got <- r.URL.Query():
		default:
		}
		_, _ = fmt.Fprintln(w, "rp-go: logged in, you may close this page")
	})}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	select {
	case q := <-got:
		switch {
		case q.Get("error") != "":
			return "", fmt.Errorf("authorization error %q", q.Get("error"))
		case q.Get("state") != state:
			return "", errors.New("state mismatch")
		case q.Get("iss") != issuer:
			return "", fmt.Errorf("iss %q, want %q", q.Get("iss"), issuer)
		}
		return q.Get("code"), nil
	case <-ctx.Done():
		return "", fmt.Errorf("wait for the callback: %w", ctx.Err())
	}
}

// checkLogin verifies the ID token of the code exchange with go-oidc and
// checks its nonce and at_hash (OIDC Core §3.1.3.7, §3.1.3.8).
func checkLogin(ctx context.Context, verify *oidc.IDTokenVerifier, tok *oauth2.Token, nonce string) (summary, string, error) {
	var s summary
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return s, "", errors.New("no id_token in the token response")
	}
	idt, err := verify.Verify(ctx, raw)
	if err != nil {
		return s, "", fmt.Errorf("verify the ID token: %w", err)
	}
	if err := idt.Claims(&s.IDClaims); err != nil {
		return s, "", err
	}
	s.IDTokenVerified, s.Subject, s.NonceMatched = true, idt.Subject, idt.Nonce == nonce
	s.AccessTokenHashOK = idt.AccessTokenHash != "" && idt.VerifyAccessToken(tok.AccessToken) == nil
	s.HadRefreshToken = tok.RefreshToken != ""
	return s, raw, nil
}

// refreshAndUserInfo refreshes tok through x/oauth2's TokenSource (as
// expired), verifies a refreshed ID token if one came, and calls userinfo
// with the new access token.
func refreshAndUserInfo(ctx context.Context, p *oidc.Provider, oc *oauth2.Config, verify *oidc.IDTokenVerifier, tok *oauth2.Token, s *summary) error {
	expired := &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	next, err := oc.TokenSource(ctx, expired).Token()
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	s.RefreshedAccess = next.AccessToken != tok.AccessToken
	s.RefreshTokenRotated = next.RefreshToken != "" && next.RefreshToken != tok.RefreshToken
	if raw, _ := next.Extra("id_token").(string); raw != "" {
		idt, err := verify.Verify(ctx, raw)
		if err != nil {
			return fmt.Errorf("verify the refreshed ID token: %w", err)
		}
		s.RefreshedIDVerified = idt.Subject == s.Subject
	}
	info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(next))
	if err != nil {
		return fmt.Errorf("userinfo: %w", err)
	}
	s.UserInfoSubject = info.Subject
	return nil
}

// endSessionURL builds the RP-initiated logout URL (OpenID Connect
// RP-Initiated Logout 1.0 §2) from the provider's end_session_endpoint.
func endSessionURL(p *oidc.Provider, idToken, postLogout string) (string, string, error) {
	var md struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&md); err != nil || md.EndSession == "" {
		return "", "", fmt.Errorf("no end_session_endpoint in the metadata (%v)", err)
	}
	u, err := url.Parse(md.EndSession)
	if err != nil {
		return "", "", err
	}
	state := oauth2.GenerateVerifier()
	q := url.Values{"id_token_hint": {idToken}, "state": {state}}
	if postLogout != "" {
		q.Set("post_logout_redirect_uri", postLogout)
	}
	u.RawQuery = q.Encode()
	return u.String(), state, nil
}
