package server_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// A refused browser origin is logged at info level with the client it was
// refused for, at most once a minute per origin and client (on the
// server's clock), and without the request's credentials.
func TestOriginRefusalLogged(t *testing.T) {
	e := browserEnv(t, false)
	form := url.Values{"grant_type": {"client_credentials"}}
	refused := func() {
		t.Helper()
		if a := e.request("POST", "/oauth/token", form, [2]string{"site", "site-secret"}, "Origin", pageOrigin); a.status != 401 {
			t.Fatalf("site from %s: %d", pageOrigin, a.status)
		}
	}
	lines := func() int {
		return strings.Count(e.logs.String(), `msg="browser origin refused" origin=`+pageOrigin+` client=site path=/oauth/token`)
	}
	refused()
	if n := lines(); n != 1 {
		t.Fatalf("%d lines after a refusal:\n%s", n, e.logs.String())
	}
	if strings.Contains(e.logs.String(), "site-secret") || strings.Contains(e.logs.String(), "level=DEBUG msg=\"browser") {
		t.Fatalf("the log holds the secret, or the line is not at info:\n%s", e.logs.String())
	}
	refused()
	e.clock.Advance(59 * time.Second)
	refused()
	if n := lines(); n != 1 {
		t.Fatalf("%d lines for refusals within a minute", n)
	}
	e.clock.Advance(time.Second)
	refused()
	if n := lines(); n != 2 {
		t.Fatalf("%d lines a minute after the first", n)
	}

	// An origin no client lists: refused by CORS itself, for no client.
	if a := e.request("OPTIONS", "/oauth/token", nil, [2]string{}, "Origin", "https://stranger.example", "Access-Control-Request-Method", "POST"); a.status != 204 {
		t.Fatalf("preflight: %d", a.status)
	}
	if !strings.Contains(e.logs.String(), `msg="browser origin refused" origin=https://stranger.example client=- path=/oauth/token why="no client lists it"`) {
		t.Fatalf("no line for an origin no client lists:\n%s", e.logs.String())
	}
}
