package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenEndpoint sends arbitrary bodies and Authorization headers to the
// token endpoint: never a panic, never a 5xx, every error an RFC 6749 JSON
// body.
func FuzzTokenEndpoint(f *testing.F) {
	seeds := []struct{ body, auth string }{
		{"grant_type=client_credentials", "Basic YXBwOmFwcC1zZWNyZXQtMDEyMzQ1Njc4OQ=="},
		{"grant_type=password&username=alice&password=wonderland&scope=read", "Basic YXBwOmFwcC1zZWNyZXQtMDEyMzQ1Njc4OQ=="},
		{"grant_type=refresh_token&refresh_token=rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Basic YXBwOmFwcC1zZWNyZXQtMDEyMzQ1Njc4OQ=="},
		{"grant_type=refresh_token&client_id=spa&refresh_token=x", ""},
		{"grant_type=client_credentials&client_id=narrow&client_secret=narrow-secret&scope=read%20write", ""},
		{"grant_type=%zz", "Basic %%%"},
		{"a=1&a=2", "Bearer x"},
		{"", "Basic Og=="},
	}
	for _, s := range seeds {
		f.Add(s.body, s.auth)
	}
	e := newEnv(f, nil) // shared by every input
	f.Fuzz(func(t *testing.T, body, auth string) {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		if rec.Code >= 400 {
			if code, _ := m["error"].(string); code == "" {
				t.Fatalf("error answer without error code: %q", rec.Body.String())
			}
		} else if m["access_token"] == nil {
			t.Fatalf("200 without a token: %q", rec.Body.String())
		}
	})
}
