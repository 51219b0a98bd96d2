package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tokend/tokend/nativelogin"
)

// provider is a small authorization server: discovery, an authorization
// endpoint that logs the user in at once, and a token endpoint that
// rotates refresh tokens. It does not check PKCE; nativelogin's tests do.
type provider struct {
	*httptest.Server
	mu      sync.Mutex
	refresh string // the refresh token it accepts
	n       int
	logins  int
}

func newProvider(t *testing.T) *provider {
	p := &provider{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.URL, "authorization_endpoint": p.URL + "/authorize", "token_endpoint": p.URL + "/token"})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {"c"}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case r.PostFormValue("grant_type") == "authorization_code":
			p.logins++
		case r.PostFormValue("refresh_token") != p.refresh || p.refresh == "":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		p.n++
		p.refresh = fmt.Sprintf("r%d", p.n)
		claims, _ := json.Marshal(map[string]any{"sub": "alice", "n": p.n})
		at := "e30." + base64.RawURLEncoding.EncodeToString(claims) + ".sig"
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3600, "refresh_token": p.refresh})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *provider) revoke() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refresh = ""
}

// The first run logs in and saves the refresh token in a 0600 file; the
// next run reuses it without a browser; after a revocation a run logs in
// again.
func TestRunLogsInOnceThenResumes(t *testing.T) {
	p := newProvider(t)
	dir := filepath.Join(t.TempDir(), "tokend-example")
	browsers := 0
	cfg := nativelogin.Config{
		Issuer: p.URL, ClientID: "cli", HTTPClient: p.Client(),
		OpenBrowser: func(ctx context.Context, u string) error {
			browsers++
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := p.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		},
	}
	saved := func() string {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(dir, "*.refresh-token"))
		if len(files) != 1 {
			t.Fatalf("files %q", files)
		}
		fi, err := os.Stat(files[0])
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("token file: %v %v", fi.Mode(), err)
		}
		b, _ := os.ReadFile(files[0])
		return strings.TrimSpace(string(b))
	}
	for i, want := range []struct {
		browsers int
		saved    string
		out      string
	}{
		{1, "r1", `"n": 1`}, // login
		{1, "r2", `"n": 2`}, // resumed, rotated
		{2, "r3", `"n": 3`}, // revoked: login again
	} {
		if i == 2 {
			p.revoke()
		}
		var out bytes.Buffer
		if err := run(t.Context(), cfg, dir, &out); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if browsers != want.browsers || saved() != want.saved || !strings.Contains(out.String(), want.out) || !strings.Contains(out.String(), `"sub": "alice"`) {
			t.Errorf("run %d: %d browsers, saved %q, output %q", i, browsers, saved(), out.String())
		}
		if strings.Contains(out.String(), "e30.") {
			t.Errorf("run %d printed the access token", i)
		}
	}
}

func TestPrintClaimsOpaque(t *testing.T) {
	var out bytes.Buffer
	if err := printClaims(&out, "opaque-token"); err != nil || strings.Contains(out.String(), "opaque-token") {
		t.Errorf("%q %v", out.String(), err)
	}
}

// BROWSER=none opens no browser (Login then prints the address); any other
// value leaves the system browser.
func TestBrowserFromEnv(t *testing.T) {
	none := browserFromEnv(func(k string) string { return map[string]string{"BROWSER": "none"}[k] })
	if err := none(t.Context(), "http://127.0.0.1/x"); !errors.Is(err, nativelogin.ErrNoBrowser) {
		t.Errorf("BROWSER=none: %v, want ErrNoBrowser", err)
	}
	if err := none(t.Context(), "http://127.0.0.1/secret-state"); strings.Contains(err.Error(), "secret-state") {
		t.Errorf("the error holds the URL: %v", err)
	}
	sys := browserFromEnv(func(string) string { return "" })
	if reflect.ValueOf(sys).Pointer() != reflect.ValueOf(nativelogin.OpenSystemBrowser).Pointer() {
		t.Error("without BROWSER=none the system browser is not the default")
	}
}
