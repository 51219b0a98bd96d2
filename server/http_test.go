package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tokend/tokend/server"
)

// A header that must appear once, sent twice, is refused with 400 on every
// endpoint that reads it: which one counts would be ambiguous.
func TestRepeatedHeaders(t *testing.T) {
	e := newEnv(t, nil)
	form := url.Values{"grant_type": {"client_credentials"}, "token": {"x"}}.Encode()
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect", "/v1/tokens"} {
		for _, header := range []string{"Authorization", "Content-Type"} {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+path, strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if path == "/v1/tokens" {
				req.Header.Set("Content-Type", "application/json")
			}
			req.SetBasicAuth(appID, appSecret)
			req.Header.Add(header, req.Header.Get(header))
			if a := e.do(req); a.status != 400 || a.str("error") != "invalid_request" || !strings.Contains(a.str("error_description"), header) {
				t.Errorf("%s with two %s headers: %d %v", path, header, a.status, a.body)
			}
		}
	}
}

// Every 405 names the methods allowed (RFC 9110 §15.5.6).
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct{ method, path, allow string }{
		{"GET", "/oauth/token", "POST"},
		{"PUT", "/oauth/revoke", "POST"},
		{"GET", "/oauth/introspect", "POST"},
		{"GET", "/v1/tokens", "POST"},
		{"POST", "/v1/sessions/x", "DELETE"},
		{"POST", "/.well-known/jwks.json", "GET, HEAD"},
		{"DELETE", "/.well-known/oauth-authorization-server", "GET, HEAD"},
		{"POST", "/readyz", "GET, HEAD"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, e.url+tc.path, nil)
		a := e.do(req)
		if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d, Allow %q; want 405, %q", tc.method, tc.path, a.status, a.header.Get("Allow"), tc.allow)
		}
	}
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.AccessLog = true })
	a := e.login()
	e.post("/oauth/token", appID, "wrong-secret", url.Values{"grant_type": {"client_credentials"}})
	logs := e.logs.String()
	for _, want := range []string{
		`msg=request method=POST path=/oauth/token status=200 client=app latency=`,
		`msg=request method=POST path=/oauth/token status=401 client="" latency=`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{a.str("access_token"), a.str("refresh_token"), appSecret, "wrong-secret", "wonderland"} {
		if strings.Contains(logs, secret) {
			t.Fatal("a secret appears in the access log")
		}
	}
	quiet := newEnv(t, nil)
	quiet.login()
	if strings.Contains(quiet.logs.String(), "msg=request") {
		t.Errorf("access log without Config.AccessLog")
	}
}

// The JWKS is measured like every endpoint and carries its max-age; the
// metrics can move to a listener of their own.
func TestJWKSMetricsAndMetricsRoute(t *testing.T) {
	e := newEnv(t, nil)
	get := func(u string) (int, http.Header, string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	if code, h, _ := get(e.url + "/.well-known/jwks.json"); code != 200 || h.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("JWKS: %d %v", code, h)
	}
	if _, _, m := get(e.url + "/metrics"); !strings.Contains(m, `tokend_request_duration_seconds_count{endpoint="jwks"} 1`) {
		t.Fatalf("no JWKS metric:\n%s", m)
	}

	apart := newEnv(t, func(c *server.Config) { c.NoMetricsRoute = true })
	if code, _, _ := get(apart.url + "/metrics"); code != http.StatusNotFound {
		t.Fatalf("/metrics with NoMetricsRoute: %d", code)
	}
	ms := httptest.NewServer(apart.srv.Metrics())
	defer ms.Close()
	if code, _, m := get(ms.URL); code != 200 || !strings.Contains(m, "tokend_request_duration_seconds") {
		t.Fatalf("Metrics handler: %d", code)
	}
}
