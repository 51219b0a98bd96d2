package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// servedProc is a `tokend serve` run in this process by startServeProc.
type servedProc struct {
	store string            // its store's URL
	urls  map[string]string // "listening", "admin", "metrics" → base URL
	logs  *syncWriter
	stop  func() int // cancels serve and returns its exit code
}

// startServeProc runs serve with args after --addr 127.0.0.1:0 and a
// store of its own, and reads the lines lines on stdout that name its
// listeners.
func startServeProc(t *testing.T, lines int, args ...string) servedProc {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	logs := &syncWriter{w: &strings.Builder{}}
	done := make(chan int, 1)
	store := "sqlite://" + filepath.Join(t.TempDir(), "tokend.db")
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--store", store}, args...)
	go func() {
		done <- run(ctx, args, nil, pw, logs)
		pw.Close()
	}()
	t.Cleanup(func() { cancel(); <-done })
	r := bufio.NewReader(pr)
	urls := map[string]string{}
	for range lines {
		line, err := r.ReadString('\n')
		if err != nil {
			cancel()
			t.Fatalf("serve output: %v; log:\n%s", err, logs.String())
		}
		line = strings.TrimSpace(strings.TrimPrefix(line, "tokend: "))
		kind, u, _ := strings.Cut(line, " on ")
		urls[kind] = strings.TrimSuffix(u, "/metrics")
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	var code int
	stopped := false
	return servedProc{store: store, urls: urls, logs: logs, stop: func() int {
		if !stopped {
			cancel()
			code, stopped = <-done, true
			done <- code
		}
		return code
	}}
}

// status sends a request without a body and returns the answer's status
// and body.
func status(t *testing.T, method, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://app.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// --admin-addr moves /v1 and /metrics to a listener of their own: the
// public address answers 404 for them (preflights too) and serves the
// rest; the admin address serves them and nothing else.
func TestServeAdminAddr(t *testing.T) {
	p := startServeProc(t, 2, "--admin-addr", "127.0.0.1:0")
	pub, adm := p.urls["listening"], p.urls["admin"]
	if pub == "" || adm == "" || pub == adm {
		t.Fatalf("listeners %v", p.urls)
	}
	for _, c := range []struct {
		method, url string
		want        int
	}{
		{"GET", pub + "/metrics", 404},
		{"POST", pub + "/v1/tokens", 404},
		{"OPTIONS", pub + "/v1/tokens", 404},
		{"GET", pub + "/v1/subjects/alice/sessions", 404},
		{"DELETE", pub + "/v1/sessions/x", 404},
		{"GET", pub + "/.well-known/jwks.json", 200},
		{"GET", pub + "/.well-known/openid-configuration", 200},
		{"GET", pub + "/healthz", 200},
		{"POST", pub + "/oauth/token", 400},

		{"GET", adm + "/metrics", 200},
		{"POST", adm + "/v1/tokens", 401}, // routed: it wants a client
		{"GET", adm + "/v1/subjects/alice/sessions", 401},
		{"GET", adm + "/.well-known/jwks.json", 404},
		{"POST", adm + "/oauth/token", 404},
	} {
		if got, body := status(t, c.method, c.url); got != c.want {
			t.Errorf("%s %s: %d %s; want %d", c.method, c.url, got, body, c.want)
		}
	}
	if _, body := status(t, "GET", adm+"/metrics"); !strings.Contains(body, "tokend_store_up 1") {
		t.Errorf("admin /metrics serves no metrics:\n%.300s", body)
	}
	// A mint works on the admin address, and is 404 on the public one.
	if code, _, errOut := runCmd(t, "", "client", "create", "--id", "backend", "--secret", sigSecret, "--mint", "--quiet", "--store", p.store); code != 0 {
		t.Fatalf("client create: %s", errOut)
	}
	mint := func(base string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/tokens", strings.NewReader(`{"subject":"alice"}`))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("backend", sigSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := mint(adm); code != 200 || !strings.Contains(body, `"access_token"`) {
		t.Errorf("mint on the admin address: %d %s", code, body)
	}
	if code, body := mint(pub); code != 404 {
		t.Errorf("mint on the public address: %d %s", code, body)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if log := p.logs.String(); strings.Contains(log, "public address") || !strings.Contains(log, `msg="serving /v1, /metrics" admin-addr=`) {
		t.Errorf("log:\n%s", log)
	}
}

// With both, /metrics is on metrics-addr alone and /v1 on admin-addr.
func TestServeAdminAndMetricsAddr(t *testing.T) {
	p := startServeProc(t, 3, "--admin-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	pub, adm, met := p.urls["listening"], p.urls["admin"], p.urls["metrics"]
	for _, c := range []struct {
		method, url string
		want        int
	}{
		{"GET", pub + "/metrics", 404},
		{"GET", pub + "/v1/subjects/alice/sessions", 404},
		{"GET", adm + "/metrics", 404},
		{"GET", adm + "/v1/subjects/alice/sessions", 401},
		{"GET", met + "/metrics", 200},
		{"GET", met + "/v1/subjects/alice/sessions", 404},
	} {
		if got, body := status(t, c.method, c.url); got != c.want {
			t.Errorf("%s %s: %d %s; want %d", c.method, c.url, got, body, c.want)
		}
	}
}

// Without --admin-addr, /v1 and /metrics stay on the public address, as
// before, and the log says so.
func TestServeAdminOnPublic(t *testing.T) {
	p := startServeProc(t, 1)
	pub := p.urls["listening"]
	if got, _ := status(t, "GET", pub+"/metrics"); got != 200 {
		t.Errorf("/metrics: %d", got)
	}
	if got, _ := status(t, "GET", pub+"/v1/subjects/alice/sessions"); got != 401 {
		t.Errorf("/v1: %d", got)
	}
	p.stop()
	if log := p.logs.String(); !strings.Contains(log, "is served on the public address; --admin-addr moves it") {
		t.Errorf("no line about /v1 on the public address:\n%s", log)
	}
}

// Two listeners on one address are refused, naming both settings.
func TestServeListenerClash(t *testing.T) {
	for _, args := range [][]string{
		{"--addr", "127.0.0.1:7001", "--admin-addr", "127.0.0.1:7001"},
		{"--addr", "127.0.0.1:7001", "--admin-addr", "127.0.0.1:7002", "--metrics-addr", "127.0.0.1:7002"},
		{"--addr", "127.0.0.1:7001", "--metrics-addr", "127.0.0.1:7001"},
		{"--admin-addr", "nowhere"},
	} {
		var out, errOut strings.Builder
		code := run(t.Context(), append([]string{"serve", "--store", "memory:"}, args...), nil, &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), "admin-addr") && !strings.Contains(errOut.String(), "metrics-addr") {
			t.Errorf("%v: exit %d, %s", args, code, errOut.String())
		}
		if !strings.Contains(errOut.String(), "address of its own") && !strings.Contains(errOut.String(), "HOST:PORT") {
			t.Errorf("%v: %s", args, errOut.String())
		}
	}
}
