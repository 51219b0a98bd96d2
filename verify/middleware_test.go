package verify_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/verify"
)

func hello(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verify.FromContext(r.Context())
		if !ok {
			t.Error("no claims in the context")
			return
		}
		_, _ = w.Write([]byte("hello " + c.Subject))
	})
}

func TestMiddlewareHeader(t *testing.T) {
	f := newFixture(t)
	h := f.v.Middleware(hello(t))
	tok := sign(hdr("EdDSA", "ed"), f.claims(), edSign(edKey))

	for _, auth := range []string{"Bearer " + tok, "bearer " + tok, "BEARER " + tok, "Bearer   " + tok} {
		if rec := serve(h, auth); rec.Code != http.StatusOK || rec.Body.String() != "hello alice" {
			t.Errorf("%.10s…: %d %s", auth, rec.Code, rec.Body)
		}
	}

	// No bearer token at all: a bare challenge, no error attribute (RFC 6750 §3.1).
	for _, auth := range [][]string{nil, {""}, {"Basic dXNlcjpwYXNz"}, {"Bearerx " + tok}} {
		rec := serve(h, auth...)
		var body map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != "Bearer" || body["error"] != "" {
			t.Errorf("%q: %d %q %s", auth, rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
		}
	}

	// A bearer header without one valid b64token.
	for _, auth := range [][]string{
		{"Bearer"}, {"Bearer "}, {"Bearer " + tok + " " + tok}, {"Bearer " + tok + ","}, {"Bearer\t" + tok},
		{"Bearer " + tok + "!"}, {`Bearer "` + tok + `"`}, {"Bearer " + tok, "Bearer " + tok},
	} {
		t.Run("", func(t *testing.T) { checkDenied(t, serve(h, auth...), tok) })
	}
}

func TestRequireScope(t *testing.T) {
	f := newFixture(t)
	h := f.v.Middleware(verify.RequireScope("write", hello(t)))
	if rec := serve(h, "Bearer "+sign(hdr("EdDSA", "ed"), f.claims(), edSign(edKey))); rec.Code != http.StatusOK {
		t.Fatalf("with the scope: %d %s", rec.Code, rec.Body)
	}
	rec := serve(h, "Bearer "+sign(hdr("EdDSA", "ed"), f.claims("scope", "read writer"), edSign(edKey)))
	ch := rec.Header().Get("WWW-Authenticate")
	if rec.Code != http.StatusForbidden || !strings.HasPrefix(ch, `Bearer error="insufficient_scope", `) || !strings.Contains(ch, `scope="write"`) ||
		!strings.Contains(rec.Body.String(), `"error":"insufficient_scope"`) {
		t.Fatalf("without the scope: %d %q %s", rec.Code, ch, rec.Body)
	}
	// Not behind Middleware: no claims, so no access.
	rec = httptest.NewRecorder()
	verify.RequireScope("write", hello(t)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("without claims: %d", rec.Code)
	}
	for _, bad := range []string{"", "read write", `a"b`, `a\b`, "é"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RequireScope(%q) did not panic", bad)
				}
			}()
			verify.RequireScope(bad, hello(t))
		}()
	}
}

// The answers of Middleware and RequireScope, byte for byte: status,
// headers and body.
func TestMiddlewareAnswers(t *testing.T) {
	f := newFixture(t)
	h := f.v.Middleware(verify.RequireScope("write", hello(t)))
	expired := sign(hdr("EdDSA", "ed"), f.claims("exp", t0.Add(-time.Hour).Unix()), edSign(edKey))
	readOnly := sign(hdr("EdDSA", "ed"), f.claims("scope", "read"), edSign(edKey))
	unknown := sign(hdr("EdDSA", "gone"), f.claims(), edSign(edKey))
	for _, tc := range []struct {
		name   string
		auth   []string
		status int
		header http.Header
		body   string
	}{
		{"no token", nil, http.StatusUnauthorized,
			http.Header{"Www-Authenticate": {"Bearer"}, "Content-Type": {"application/json"}, "Cache-Control": {"no-store"}},
			`{"error_description":"bearer token required"}` + "\n"},
		{"expired", []string{"Bearer " + expired}, http.StatusUnauthorized,
			http.Header{"Www-Authenticate": {`Bearer error="invalid_token", error_description="the access token expired"`},
				"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}},
			`{"error":"invalid_token","error_description":"the access token expired"}` + "\n"},
		{"unknown key", []string{"Bearer " + unknown}, http.StatusUnauthorized,
			http.Header{"Www-Authenticate": {`Bearer error="invalid_token", error_description="unknown signing key"`},
				"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}},
			`{"error":"invalid_token","error_description":"unknown signing key"}` + "\n"},
		{"two headers", []string{"Bearer " + expired, "Bearer " + expired}, http.StatusUnauthorized,
			http.Header{"Www-Authenticate": {`Bearer error="invalid_token", error_description="more than one Authorization header"`},
				"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}},
			`{"error":"invalid_token","error_description":"more than one Authorization header"}` + "\n"},
		{"insufficient scope", []string{"Bearer " + readOnly}, http.StatusForbidden,
			http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", error_description="the token lacks scope write", scope="write"`},
				"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}},
			`{"error":"insufficient_scope","error_description":"the token lacks scope write"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(h, tc.auth...)
			if rec.Code != tc.status || !reflect.DeepEqual(rec.Header(), tc.header) || rec.Body.String() != tc.body {
				t.Fatalf("answer %d %v %q\nwant   %d %v %q", rec.Code, rec.Header(), rec.Body, tc.status, tc.header, tc.body)
			}
		})
	}

	// The keys cannot be fetched: 503 temporarily_unavailable, no challenge.
	f = newFixture(t)
	f.is.set(func(is *issuer) { is.jwksStatus = http.StatusInternalServerError })
	rec := serve(f.v.Middleware(hello(t)), "Bearer "+readOnly)
	want := http.Header{"Retry-After": {"10"}, "Content-Type": {"application/json"}, "Cache-Control": {"no-store"}}
	if body := `{"error":"temporarily_unavailable","error_description":"cannot fetch the issuer's keys"}` + "\n"; rec.Code != http.StatusServiceUnavailable ||
		!reflect.DeepEqual(rec.Header(), want) || rec.Body.String() != body {
		t.Fatalf("answer %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
}
