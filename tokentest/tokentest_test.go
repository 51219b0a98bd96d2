package tokentest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/tokentest"
)

func newServer(t *testing.T, opts *tokentest.Options) (*tokentest.Server, context.Context) {
	t.Helper()
	s := tokentest.NewServer(opts)
	t.Cleanup(s.Close)
	return s, context.WithValue(t.Context(), oauth2.HTTPClient, s.Client())
}

func ccConfig(s *tokentest.Server) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     "client",
		ClientSecret: "secret",
		TokenURL:     s.TokenURL(),
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
}

func refreshConfig(s *tokentest.Server) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     "client",
		ClientSecret: "secret",
		Endpoint:     oauth2.Endpoint{TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader},
	}
}

func refreshOnce(ctx context.Context, s *tokentest.Server, rt string) (*oauth2.Token, error) {
	return refreshConfig(s).TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
}

func wantRetrieveError(t *testing.T, err error, status int, code string) {
	t.Helper()
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	if !ok {
		t.Fatalf("error = %v (%T), want *oauth2.RetrieveError", err, err)
	}
	if re.Response.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("RetrieveError status %d code %q, want %d %q", re.Response.StatusCode, re.ErrorCode, status, code)
	}
}

func TestClientCredentials(t *testing.T) {
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
		s, ctx := newServer(t, &tokentest.Options{TTL: 90 * time.Minute})
		cfg := ccConfig(s)
		cfg.AuthStyle = style
		cfg.Scopes = []string{"read", "write"}
		before := time.Now()
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatalf("style %d: Token: %v", style, err)
		}
		if !strings.HasPrefix(tok.AccessToken, "at_") || tok.TokenType != "Bearer" || tok.RefreshToken != "" {
			t.Errorf("style %d: token = %q %q refresh %q", style, tok.AccessToken, tok.TokenType, tok.RefreshToken)
		}
		if got := tok.Extra("expires_in"); got != 5400.0 {
			t.Errorf("style %d: expires_in = %v, want 5400", style, got)
		}
		if lo, hi := before.Add(90*time.Minute), time.Now().Add(90*time.Minute); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
			t.Errorf("style %d: expiry %v not in [%v, %v]", style, tok.Expiry, lo, hi)
		}
		if got := tok.Extra("scope"); got != "read write" {
			t.Errorf("style %d: scope = %v", style, got)
		}
		if !s.Valid(tok.AccessToken) || s.Valid("at_bogus") {
			t.Errorf("style %d: Valid mismatch", style)
		}
		if s.Requests() != 1 || s.Failures() != 0 || s.Refreshes() != 0 {
			t.Errorf("style %d: stats %d/%d/%d", style, s.Requests(), s.Failures(), s.Refreshes())
		}
	}
}

// expires_in is the TTL rounded up to whole seconds, and the token is
// valid for exactly that long: never less than it was said to be.
func TestExpiresIn(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want any
	}{
		{0, 3600.0},
		{1500 * time.Millisecond, 2.0},
		{time.Nanosecond, 1.0},
		{-1, nil},
	} {
		c := clocktest.New(time.Date(2025, 1, 1, 0, 0, 0, 500_000_000, time.UTC))
		s, _ := newServer(t, &tokentest.Options{TTL: tc.ttl, Now: c.Now})
		body := post(t, s, url.Values{"grant_type": {"client_credentials"}}, true)
		if got := body["expires_in"]; got != tc.want {
			t.Errorf("TTL %v: expires_in = %v, want %v", tc.ttl, got, tc.want)
		}
		at, _ := body["access_token"].(string)
		if in, ok := tc.want.(float64); ok {
			c.Advance(time.Duration(in)*time.Second - time.Nanosecond)
			if !s.Valid(at) {
				t.Errorf("TTL %v: not valid 1 ns before the expires_in it was sent with", tc.ttl)
			}
			c.Advance(time.Nanosecond)
			if s.Valid(at) {
				t.Errorf("TTL %v: still valid after expires_in", tc.ttl)
			}
		} else if c.Advance(100 * 365 * 24 * time.Hour); !s.Valid(at) {
			t.Errorf("TTL %v: a token without expires_in expired", tc.ttl)
		}
		if _, ok := body["refresh_token"]; ok {
			t.Errorf("TTL %v: client_credentials returned a refresh token", tc.ttl)
		}
	}
}

func TestRefreshRotate(t *testing.T) {
	s, ctx := newServer(t, &tokentest.Options{Rotate: true})
	rt := s.IssueRefreshToken()
	ts := refreshConfig(s).TokenSource(ctx, &oauth2.Token{RefreshToken: rt})
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if !s.Valid(tok.AccessToken) || tok.RefreshToken == "" || tok.RefreshToken == rt {
		t.Fatalf("refreshed token: valid %v, refresh token rotated %v", s.Valid(tok.AccessToken), tok.RefreshToken != rt)
	}
	_, err = refreshOnce(ctx, s, rt) // replay of the old refresh token
	wantRetrieveError(t, err, http.StatusBadRequest, "invalid_grant")
	tok2, err := refreshOnce(ctx, s, tok.RefreshToken)
	if err != nil {
		t.Fatalf("new refresh token rejected: %v", err)
	}
	if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken {
		t.Error("second refresh did not issue fresh tokens")
	}
	if s.Refreshes() != 2 || s.Requests() != 3 || s.Failures() != 1 {
		t.Errorf("stats: refreshes %d requests %d failures %d", s.Refreshes(), s.Requests(), s.Failures())
	}
}

func TestRefreshNoRotate(t *testing.T) {
	s, ctx := newServer(t, nil)
	rt := s.IssueRefreshToken()
	for i := range 2 {
		tok, err := refreshOnce(ctx, s, rt)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if tok.RefreshToken != rt || tok.Extra("refresh_token") != nil {
			t.Errorf("refresh %d: refresh token changed or sent", i)
		}
	}
	if s.Refreshes() != 2 {
		t.Errorf("Refreshes = %d", s.Refreshes())
	}
}

func TestConcurrentRotationSingleWinner(t *testing.T) {
	s, ctx := newServer(t, &tokentest.Options{Rotate: true})
	rt := s.IssueRefreshToken()
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := refreshOnce(ctx, s, rt)
			errs <- err
		}()
	}
	ok := 0
	for range n {
		if err := <-errs; err == nil {
			ok++
		} else {
			wantRetrieveError(t, err, http.StatusBadRequest, "invalid_grant")
		}
	}
	if ok != 1 || s.Refreshes() != 1 {
		t.Errorf("%d refreshes succeeded (Refreshes %d), want 1", ok, s.Refreshes())
	}
}

func TestFail(t *testing.T) {
	s, ctx := newServer(t, nil)
	rt := s.IssueRefreshToken()
	s.Fail(2, http.StatusServiceUnavailable, "temporarily_unavailable")
	for range 2 {
		_, err := refreshOnce(ctx, s, rt)
		wantRetrieveError(t, err, http.StatusServiceUnavailable, "temporarily_unavailable")
	}
	if _, err := refreshOnce(ctx, s, rt); err != nil {
		t.Fatalf("after failures: %v (refresh token should survive injected failures)", err)
	}
	s.Fail(1, http.StatusBadRequest, "invalid_grant")
	_, err := ccConfig(s).Token(ctx)
	wantRetrieveError(t, err, http.StatusBadRequest, "invalid_grant")
	s.Fail(1, http.StatusInternalServerError, "")
	_, err = ccConfig(s).Token(ctx)
	wantRetrieveError(t, err, http.StatusInternalServerError, "server_error")
	if s.Requests() != 5 || s.Failures() != 4 || s.Refreshes() != 1 {
		t.Errorf("stats: requests %d failures %d refreshes %d", s.Requests(), s.Failures(), s.Refreshes())
	}
}

func TestSetFailing(t *testing.T) {
	s, ctx := newServer(t, nil)
	s.SetFailing(http.StatusBadGateway, "server_error")
	for range 3 {
		_, err := ccConfig(s).Token(ctx)
		wantRetrieveError(t, err, http.StatusBadGateway, "server_error")
	}
	s.SetFailing(0, "")
	if _, err := ccConfig(s).Token(ctx); err != nil {
		t.Fatal(err)
	}
}

// Injected failures carry the Retry-After set, as it is, and none once
// it is cleared; successes never carry one.
func TestSetRetryAfter(t *testing.T) {
	s, ctx := newServer(t, nil)
	retryAfter := func(err error) string {
		t.Helper()
		re, ok := errors.AsType[*oauth2.RetrieveError](err)
		if !ok {
			t.Fatalf("error = %v, want *oauth2.RetrieveError", err)
		}
		return re.Response.Header.Get("Retry-After")
	}
	s.SetRetryAfter("5")
	s.Fail(1, http.StatusServiceUnavailable, "temporarily_unavailable")
	_, err := ccConfig(s).Token(ctx)
	if got := retryAfter(err); got != "5" {
		t.Errorf("Retry-After %q, want 5", got)
	}
	s.SetRetryAfter("Sun, 06 Dec 2026 14:00:05 GMT")
	s.Fail(1, http.StatusTooManyRequests, "temporarily_unavailable")
	_, err = ccConfig(s).Token(ctx)
	if got := retryAfter(err); got != "Sun, 06 Dec 2026 14:00:05 GMT" {
		t.Errorf("Retry-After %q, want the date", got)
	}
	if _, err := ccConfig(s).Token(ctx); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
	s.SetRetryAfter("")
	s.Fail(1, http.StatusServiceUnavailable, "temporarily_unavailable")
	_, err = ccConfig(s).Token(ctx)
	if got := retryAfter(err); got != "" {
		t.Errorf("Retry-After %q after SetRetryAfter(\"\"), want none", got)
	}
}

func TestFailPanicsOnBadStatus(t *testing.T) {
	s, _ := newServer(t, nil)
	defer func() {
		if recover() == nil {
			t.Error("Fail(1, 200, ...) did not panic")
		}
	}()
	s.Fail(1, http.StatusOK, "x")
}

func TestBadSecret(t *testing.T) {
	s, ctx := newServer(t, &tokentest.Options{ClientID: "id:with/odd chars", ClientSecret: "s3cr3t&="})
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := ccConfig(s)
		cfg.ClientID, cfg.AuthStyle = "id:with/odd chars", style
		_, err := cfg.Token(ctx)
		wantRetrieveError(t, err, http.StatusUnauthorized, "invalid_client")
		if h := err.(*oauth2.RetrieveError).Response.Header.Get("WWW-Authenticate"); h != `Basic realm="tokentest"` {
			t.Errorf("WWW-Authenticate = %q", h)
		}
		cfg.ClientSecret = "s3cr3t&="
		if _, err := cfg.Token(ctx); err != nil {
			t.Errorf("style %d: right credentials rejected: %v", style, err)
		}
	}
}

func TestDelay(t *testing.T) {
	s, ctx := newServer(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	s.SetDelay(func(*http.Request) {
		entered <- struct{}{}
		<-release
	})
	done := make(chan error, 1)
	go func() {
		_, err := ccConfig(s).Token(ctx)
		done <- err
	}()
	<-entered
	if s.Requests() != 1 {
		t.Errorf("Requests = %d while delayed", s.Requests())
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.SetDelay(nil)
	if _, err := ccConfig(s).Token(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestHandler(t *testing.T) {
	c := clocktest.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s, ctx := newServer(t, &tokentest.Options{TTL: time.Minute, Now: c.Now})
	tok, err := ccConfig(s).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	var rec *httptest.ResponseRecorder
	call := func(auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "/resource", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Header().Get("WWW-Authenticate")
	}
	want401 := func(name, auth string) {
		t.Helper()
		if code, www := call(auth); code != http.StatusUnauthorized || www != `Bearer error="invalid_token"` {
			t.Errorf("%s: %d %q, want 401 with Bearer challenge", name, code, www)
		}
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != "invalid_token" || body.Description == "" ||
			rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: body %q (%v) with headers %v, want a JSON invalid_token error, not stored", name, rec.Body, err, rec.Header())
		}
	}
	if code, _ := call("Bearer " + tok.AccessToken); code != http.StatusOK {
		t.Fatalf("valid token: %d", code)
	}
	want401("no header", "")
	want401("unknown token", "Bearer at_00")
	want401("basic scheme", "Basic "+tok.AccessToken)

	c.Advance(59 * time.Second)
	if code, _ := call("Bearer " + tok.AccessToken); code != http.StatusOK {
		t.Fatalf("token rejected before expiry: %d", code)
	}
	c.Advance(time.Second)
	want401("expired", "Bearer "+tok.AccessToken)

	tok2, err := ccConfig(s).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := call("Bearer " + tok2.AccessToken); code != http.StatusOK {
		t.Fatalf("fresh token: %d", code)
	}
	s.RevokeAccessToken(tok2.AccessToken)
	want401("revoked", "Bearer "+tok2.AccessToken)
}

func TestHandlerWithOAuth2Transport(t *testing.T) {
	s, ctx := newServer(t, nil)
	rs := httptest.NewServer(s.Handler())
	defer rs.Close()
	resp, err := ccConfig(s).Client(ctx).Get(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("resource answered %d %q", resp.StatusCode, body)
	}
	if s.Requests() != 1 {
		t.Errorf("Requests = %d", s.Requests())
	}
}

// post sends a token request with the default credentials (Basic if basic is true)
// and returns the decoded JSON body, failing the test unless the answer is 200.
func post(t *testing.T, s *tokentest.Server, form url.Values, basic bool) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth("client", "secret")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, decode error %v", resp.StatusCode, err)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", resp.Header.Get("Cache-Control"))
	}
	return body
}

func TestErrorAnswers(t *testing.T) {
	// Parallel: after the "body too large" case net/http lingers 500ms before closing
	// the connection (RST avoidance), which delays s.Close.
	t.Parallel()
	s, _ := newServer(t, nil)
	good := s.IssueRefreshToken()
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, method, ctype, body string
		basic                     bool
		status                    int
		code                      string
	}{
		{"GET", http.MethodGet, "", "", true, 405, "invalid_request"},
		{"wrong content type", http.MethodPost, "application/json", `{"grant_type":"client_credentials"}`, true, 400, "invalid_request"},
		{"missing grant_type", http.MethodPost, form, "scope=x", true, 400, "invalid_request"},
		{"repeated parameter", http.MethodPost, form, "grant_type=client_credentials&grant_type=client_credentials", true, 400, "invalid_request"},
		{"unknown grant", http.MethodPost, form, "grant_type=password&username=u&password=p", true, 400, "unsupported_grant_type"},
		{"no client auth", http.MethodPost, form, "grant_type=client_credentials", false, 401, "invalid_client"},
		{"bad client post", http.MethodPost, form, "grant_type=client_credentials&client_id=client&client_secret=nope", false, 401, "invalid_client"},
		{"two auth methods", http.MethodPost, form, "grant_type=client_credentials&client_id=client&client_secret=secret", true, 400, "invalid_request"},
		{"bad refresh token", http.MethodPost, form, "grant_type=refresh_token&refresh_token=rt_nope", true, 400, "invalid_grant"},
		{"missing refresh token", http.MethodPost, form, "grant_type=refresh_token", true, 400, "invalid_request"},
		{"body too large", http.MethodPost, form, "grant_type=client_credentials&pad=" + strings.Repeat("a", 70<<10), true, 413, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.TokenURL(), strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.basic {
				req.SetBasicAuth("client", "secret")
			}
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(raw, &body); err != nil || body.Error != tc.code || body.Description == "" {
				t.Errorf("body %s (err %v), want error %q with a description", raw, err, tc.code)
			}
			if strings.Contains(string(raw), good) {
				t.Error("error body leaks a refresh token")
			}
		})
	}
	// None of the failures consumed the valid refresh token.
	if body := post(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {good}}, true); body["access_token"] == nil {
		t.Errorf("refresh after errors: %v", body)
	}
}
