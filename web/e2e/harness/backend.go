package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
)

// backend is the app's own backend of README.md's "Browser apps": on
// every page load the page asks GET /session/tokens, and the backend
// starts a family at tokend with POST /v1/tokens {"subject":"alice",
// "client_id":"spa"}, without force, and hands the answer to the page
// as it came. ?client= names another public client (spa-cookie). It
// talks to tokend directly (the auth proxy's upstream), as a backend
// would, with the client set through POST /backend on the control port.
type backend struct {
	logger   *slog.Logger
	upstream func() *url.URL
	mints    atomic.Int64

	mu           sync.Mutex
	id, secret   string
	lastStatuses []int
}

func (b *backend) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /session/tokens", b.tokens)
}

func (b *backend) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /backend", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("id") == "" || q.Get("secret") == "" {
			http.Error(w, "want id= and secret=", http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.id, b.secret = q.Get("id"), q.Get("secret")
		b.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /backend-log", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		defer b.mu.Unlock()
		writeJSON(w, map[string]any{"mints": b.mints.Load(), "statuses": append([]int{}, b.lastStatuses...)})
	})
}

func (b *backend) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mints.Store(0)
	b.lastStatuses = nil
}

func (b *backend) tokens(w http.ResponseWriter, r *http.Request) {
	up := b.upstream()
	b.mu.Lock()
	id, secret := b.id, b.secret
	b.mu.Unlock()
	if up == nil || id == "" {
		http.Error(w, "harness: no tokend or backend client yet (POST /upstream, POST /backend)", http.StatusServiceUnavailable)
		return
	}
	client := r.URL.Query().Get("client")
	if client == "" {
		client = "spa"
	}
	body, _ := json.Marshal(map[string]string{"subject": "alice", "client_id": client})
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, up.JoinPath("/v1/tokens").String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.logger.Warn("backend mint", "err", err)
		http.Error(w, "harness: tokend unreachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	b.mints.Add(1)
	b.mu.Lock()
	b.lastStatuses = append(b.lastStatuses, resp.StatusCode)
	b.mu.Unlock()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
