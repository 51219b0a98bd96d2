package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/memory"
)

// env is a running server on loopback with one confidential client "app"
// (secret "app-secret-0123456789abcdef0123456789", every grant, may mint), one public client "spa"
// and one user "alice" (password "wonderland").
type env struct {
	t     testing.TB
	url   string
	store store.Store
	clock *clocktest.Clock
	logs  *bytes.Buffer
	srv   *server.Server
}

const (
	appID, appSecret = "app", "app-secret-0123456789"
)

// serve starts a Server with cfg, changed by mod if not nil, behind an
// httptest server whose URL is the Issuer, and returns both; the server
// stops when t ends.
func serve(t testing.TB, cfg server.Config, mod func(*server.Config)) (*server.Server, string) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	cfg.Issuer = "http://" + hs.Listener.Addr().String()
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv
	hs.Start()
	t.Cleanup(hs.Close)
	return srv, cfg.Issuer
}

// testSecret is the Config.Secret of the servers newEnv starts.
var testSecret = bytes.Repeat([]byte{7}, 32)

func newEnv(t testing.TB, mod func(*server.Config)) *env {
	t.Helper()
	return newEnvOn(t, memory.New(), mod)
}

// newEnvOn is newEnv on st, an empty store of any backend.
func newEnvOn(t testing.TB, st store.Store, mod func(*server.Config)) *env {
	t.Helper()
	ctx := t.Context()
	clk := clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ks, err := keys.Load(ctx, st, "EdDSA", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, issuer := serve(t, server.Config{Store: st, Signer: ks, Secret: testSecret, Logger: logger, Now: clk.Now}, mod)
	for _, c := range []store.Client{
		{ID: appID, SecretHash: server.HashClientSecret(appSecret), Grants: []string{"client_credentials", "refresh_token", "password"}, Mint: true},
		{ID: "other", SecretHash: server.HashClientSecret("other-secret"), Grants: []string{"client_credentials", "refresh_token", "password"}},
		{ID: "spa", Grants: []string{"refresh_token", "password"}},
		{ID: "narrow", SecretHash: server.HashClientSecret("narrow-secret"), Grants: []string{"client_credentials"}, Scopes: []string{"read", "write"}},
	} {
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateUser(ctx, store.User{Name: "alice", PasswordHash: password.Hash("wonderland")}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: issuer, store: st, clock: clk, logs: logs, srv: srv}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// answer is a decoded JSON response.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }

// post sends a form to path, authenticating as id/secret with Basic when id
// is not empty.
func (e *env) post(path, id, secret string, form url.Values) answer {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) answer {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			e.t.Fatalf("answer is not JSON: %q", raw)
		}
	}
	return a
}

// login runs the password grant for alice and returns the answer.
func (e *env) login() answer {
	e.t.Helper()
	a := e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}, "scope": {"read write"}})
	if a.status != http.StatusOK {
		e.t.Fatalf("login: %d %v", a.status, a.body)
	}
	return a
}

func (e *env) refresh(rt string) answer {
	e.t.Helper()
	return e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}
