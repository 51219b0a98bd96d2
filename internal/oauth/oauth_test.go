package oauth

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestBearerChallenge(t *testing.T) {
	cases := []struct {
		name, realm, code, desc, scope, want string
	}{
		{"bare", "", "", "", "", "Bearer"},
		{"realm only", "tokend", "", "ignored", "", `Bearer realm="tokend"`},
		{"error", "", InvalidToken, "the access token expired", "", `Bearer error="invalid_token", error_description="the access token expired"`},
		{"realm and error", "tokend", InvalidToken, "x", "", `Bearer realm="tokend", error="invalid_token", error_description="x"`},
		{"scope", "", InsufficientScope, "needs write", "write", `Bearer error="insufficient_scope", error_description="needs write", scope="write"`},
		{"quotes cannot break out", "", InvalidToken, `a"b\c` + "\n", "", `Bearer error="invalid_token", error_description="a?b?c?"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := BearerChallenge(tc.realm, tc.code, tc.desc, tc.scope); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	if got := BasicChallenge(`to"kend`); got != `Basic realm="to?kend"` {
		t.Errorf("BasicChallenge = %s", got)
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, Answer{Status: 503, RetryAfter: 7, Challenge: "Bearer"}, TemporarilyUnavailable, "store unavailable")
	if w.Code != 503 || w.Header().Get("Retry-After") != "7" || w.Header().Get("WWW-Authenticate") != "Bearer" ||
		w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("answer: %d %v", w.Code, w.Header())
	}
	var b Body
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error != TemporarilyUnavailable || b.Description != "store unavailable" {
		t.Fatalf("body %q: %v", w.Body, err)
	}

	w = httptest.NewRecorder()
	WriteError(w, Answer{Status: 401}, "", "bearer token required")
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["error"]; ok || m["error_description"] != "bearer token required" {
		t.Fatalf("bare body %v", m)
	}
	if w.Header().Get("Retry-After") != "" {
		t.Fatal("Retry-After without a RetryAfter")
	}
}

func TestTerminal(t *testing.T) {
	for code, want := range map[string]bool{InvalidGrant: true, InvalidClient: true, UnauthorizedClient: true,
		InvalidRequest: false, TemporarilyUnavailable: false, ServerError: false, "": false} {
		if Terminal(code) != want {
			t.Errorf("Terminal(%q) = %v", code, !want)
		}
	}
}
