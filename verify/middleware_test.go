package verify_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
