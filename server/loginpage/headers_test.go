package loginpage

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// Headers sets exactly the policy, with only valid sources added.
func TestHeaders(t *testing.T) {
	const head = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'"
	const tail = "; frame-ancestors 'none'; base-uri 'none'"
	cases := []struct {
		name    string
		targets []string
		want    string
	}{
		{"none", nil, ""},
		{"redirect URIs", []string{"https://App.Example/cb?x=1", "com.example.app:/cb", "http://127.0.0.1:53682/cb"},
			" https://app.example com.example.app: http://127.0.0.1:53682"},
		{"duplicates", []string{"https://a.example/1", "https://a.example/2", "https://a.example"}, " https://a.example"},
		{"injection", []string{"https://a.example; script-src *", "https://b.example, script-src *", "https://c.example 'unsafe-inline'",
			"'self'", "*", "https:", "data:", "javascript:alert(1)", "/relative", "", "https://a.example%3B/x", "https://*.example"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Headers(w, tc.targets...)
			want := http.Header{
				"Content-Security-Policy": {head + tc.want + tail},
				"X-Frame-Options":         {"DENY"},
				"Referrer-Policy":         {"no-referrer"},
				"Cache-Control":           {"no-store"},
				"X-Content-Type-Options":  {"nosniff"},
				"Content-Type":            {"text/html; charset=utf-8"},
			}
			if len(w.Header()) != len(want) {
				t.Errorf("headers %v", w.Header())
			}
			for k, v := range want {
				if got := w.Header().Values(k); len(got) != 1 || got[0] != v[0] {
					t.Errorf("%s: %q, want %q", k, got, v[0])
				}
			}
		})
	}
}

func TestFormActionSource(t *testing.T) {
	cases := map[string]string{
		"https://app.example/cb":            "https://app.example",
		"HTTPS://APP.EXAMPLE:8443/cb#x":     "https://app.example:8443",
		"http://127.0.0.1:53682/cb":         "http://127.0.0.1:53682",
		"http://[::1]:8080/cb":              "http://[::1]:8080",
		"http://[0:0::1]/cb":                "http://[::1]",
		"com.example.app:/oauth2redirect":   "com.example.app:",
		"com.example.app:cb":                "com.example.app:",
		"https://user:pw@app.example/cb":    "https://app.example",
		"https://app.example:/cb":           "",
		"https://app.example:99999999/cb":   "",
		"https://[fe80::1%25en0]/cb":        "",
		"https://xn--80ak6aa92e.example/cb": "https://xn--80ak6aa92e.example",
		"https://exämple.example/cb":        "",
		"https://a_b.example/cb":            "",
		"https:":                            "",
		"http:/cb":                          "",
		"1http://a.example":                 "",
		"https://a.example; script-src *":   "",
	}
	for in, want := range cases {
		if got := FormActionSource(in); got != want {
			t.Errorf("FormActionSource(%q) = %q, want %q", in, got, want)
		}
	}
}

// sourceRE is a scheme-source or a host-source without path or wildcard
// (CSP Level 3 §2.3.1), IPv6 literals allowed.
var sourceRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:(//([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?)?$`)

// FuzzFormActionSource: whatever the input, the source is empty or one
// CSP source that cannot end the directive.
func FuzzFormActionSource(f *testing.F) {
	for _, s := range []string{"https://app.example/cb", "com.example.app:/cb", "http://[::1]:8080/x",
		"https://a.example; script-src *", "https://a.example%3B/", "a:", "https://a.example:1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src := FormActionSource(s)
		if src == "" {
			return
		}
		if !sourceRE.MatchString(src) {
			t.Fatalf("FormActionSource(%q) = %q, not a CSP source", s, src)
		}
		w := httptest.NewRecorder()
		Headers(w, s)
		if got := w.Header().Get("Content-Security-Policy"); strings.Count(got, ";") != 5 {
			t.Fatalf("policy %q", got)
		}
	})
}
