package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// --metrics-addr moves /metrics to a listener of its own; --access-log
// logs each request.
func TestServeMetricsAddrAndAccessLog(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	logs := &syncWriter{w: &strings.Builder{}}
	done := make(chan int, 1)
	store := "sqlite://" + filepath.Join(t.TempDir(), "tokend.db")
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--access-log", "--store", store}, nil, pw, logs)
		pw.Close()
	}()
	lines := bufio.NewReader(pr)
	urls := map[string]string{}
	for range 2 {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("serve output: %v", err)
		}
		line = strings.TrimSpace(strings.TrimPrefix(line, "tokend: "))
		kind, u, _ := strings.Cut(line, " on ")
		urls[kind] = u
	}
	go func() { _, _ = io.Copy(io.Discard, lines) }()
	get := func(u string) int {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(urls["metrics"]); code != 200 {
		t.Errorf("metrics listener: %d", code)
	}
	if code := get(strings.TrimSuffix(urls["metrics"], "/metrics") + "/oauth/token"); code != 404 {
		t.Errorf("another path on the metrics listener: %d", code)
	}
	if code := get(urls["listening"] + "/metrics"); code != 404 {
		t.Errorf("/metrics on the main listener: %d", code)
	}
	if code := get(urls["listening"] + "/.well-known/jwks.json"); code != 200 {
		t.Errorf("JWKS: %d", code)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if !strings.Contains(logs.w.String(), "msg=request method=GET path=/.well-known/jwks.json status=200") {
		t.Errorf("no access-log line:\n%s", logs.w.String())
	}
}

// syncWriter serialises writes (the server logs from many goroutines) and
// reads.
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// --audience is the aud of the access tokens serve issues.
func TestServeAudience(t *testing.T) {
	store := "sqlite://" + filepath.Join(t.TempDir(), "tokend.db")
	code, secret, errOut := runCmd(t, "", "client", "create", "--init", "--id", "app", "--quiet", "--store", store)
	if code != 0 {
		t.Fatalf("client create: exit %d, %q", code, errOut)
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--audience", "https://api.example.com", "--store", store}, nil, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewReader(pr)
	line, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("serve output: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, lines) }()
	_, base, _ := strings.Cut(strings.TrimSpace(line), " on ")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", strings.TrimSpace(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	parts := strings.Split(tok.AccessToken, ".")
	if err != nil || len(parts) != 3 {
		t.Fatalf("token answer %d: %v", resp.StatusCode, err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Aud any `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Aud != "https://api.example.com" {
		t.Errorf("claims %s: aud %v, %v; want https://api.example.com", payload, claims.Aud, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
}
