package nativelogin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

var testWant = want{state: "s1", issuer: "https://auth.example", issNeeded: true}

var callbackCases = []struct {
	name, query string
	code        string
	err         error
}{
	{"code", "code=c1&state=s1&iss=https%3A%2F%2Fauth.example", "c1", nil},
	{"wrong state", "code=c1&state=s2&iss=https%3A%2F%2Fauth.example", "", ErrStateMismatch},
	{"no state", "code=c1&iss=https%3A%2F%2Fauth.example", "", ErrStateMismatch},
	{"state prefix", "code=c1&state=s&iss=https%3A%2F%2Fauth.example", "", ErrStateMismatch},
	{"wrong iss", "code=c1&state=s1&iss=https%3A%2F%2Fevil.example", "", ErrIssuerMismatch},
	{"empty iss", "code=c1&state=s1&iss=", "", ErrIssuerMismatch},
	{"no iss", "code=c1&state=s1", "", ErrIssuerMismatch},
	{"repeated code", "code=c1&code=c2&state=s1&iss=https%3A%2F%2Fauth.example", "", ErrMalformedCallback},
	{"repeated state", "code=c1&state=s1&state=s1&iss=https%3A%2F%2Fauth.example", "", ErrMalformedCallback},
	{"bad escape", "code=%zz&state=s1", "", ErrMalformedCallback},
	{"semicolon", "code=c1;state=s1", "", ErrMalformedCallback},
	{"no code", "state=s1&iss=https%3A%2F%2Fauth.example", "", ErrMalformedCallback},
	{"error", "error=access_denied&error_description=no&state=s1&iss=https%3A%2F%2Fauth.example", "", &AuthorizationError{}},
	{"error with wrong state", "error=access_denied&state=x&iss=https%3A%2F%2Fauth.example", "", ErrStateMismatch},
}

func TestParseCallback(t *testing.T) {
	for _, tc := range callbackCases {
		t.Run(tc.name, func(t *testing.T) {
			code, err := parseCallback(tc.query, testWant)
			if code != tc.code {
				t.Errorf("code %q, want %q", code, tc.code)
			}
			var ae *AuthorizationError
			switch {
			case tc.err == nil && err != nil:
				t.Errorf("error %v", err)
			case errors.As(tc.err, &ae):
				if !errors.As(err, &ae) || ae.Code != "access_denied" || ae.Description != "no" {
					t.Errorf("error %v, want the provider's access_denied", err)
				}
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Errorf("error %v, want %v", err, tc.err)
			}
		})
	}
}

// Whatever the query, a code is returned only with the request's state
// and issuer, every parameter once, and no error parameter.
func FuzzParseCallback(f *testing.F) {
	for _, tc := range callbackCases {
		f.Add(tc.query)
	}
	f.Fuzz(func(t *testing.T, query string) {
		code, err := parseCallback(query, testWant)
		if err != nil {
			if code != "" {
				t.Fatalf("code %q with error %v", code, err)
			}
			return
		}
		q, perr := url.ParseQuery(query)
		if perr != nil || code == "" || q.Get("state") != testWant.state || q.Get("iss") != testWant.issuer || q.Has("error") {
			t.Fatalf("accepted %q: code %q", query, code)
		}
		for k, v := range q {
			if len(v) != 1 {
				t.Fatalf("accepted %q with %s repeated", query, k)
			}
		}
	})
}

// Only the first GET of /callback on the redirect URI's host counts.
func TestCallbackHandler(t *testing.T) {
	h := &callbackHandler{host: "127.0.0.1:5000", want: testWant, done: make(chan callback, 1)}
	serve := func(method, target, host string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	ok := "/callback?" + callbackCases[0].query
	for _, r := range []struct {
		method, target, host string
		status               int
	}{
		{"GET", "/favicon.ico", "127.0.0.1:5000", http.StatusNotFound},
		{"GET", ok, "evil.example:5000", http.StatusNotFound}, // DNS rebinding
		{"POST", ok, "127.0.0.1:5000", http.StatusMethodNotAllowed},
	} {
		if w := serve(r.method, r.target, r.host); w.Code != r.status {
			t.Errorf("%s %s Host %s: %d, want %d", r.method, r.target, r.host, w.Code, r.status)
		}
	}
	if len(h.done) != 0 {
		t.Fatal("a request that is not the callback ended the login")
	}
	w := serve("GET", ok, "127.0.0.1:5000")
	if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("callback: %d %v", w.Code, w.Header())
	}
	if cb := <-h.done; cb.code != "c1" || cb.err != nil {
		t.Errorf("delivered %+v", cb)
	}
	if w := serve("GET", "/callback?code=c2&state=s1&iss=https%3A%2F%2Fauth.example", "127.0.0.1:5000"); w.Code != http.StatusConflict {
		t.Errorf("second callback: %d", w.Code)
	}
	if len(h.done) != 0 {
		t.Error("a second callback was delivered")
	}
}
