package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tokend/tokend/store/postgres/pgtest"
)

// Two `tokend serve` on one PostgreSQL count failures together, through
// the sealed wrapper: wrong secrets of one client sent to both in turn
// lock it on both after the pair's limit plus one.
func TestServeFleetThrottle(t *testing.T) {
	u := pgtest.ServerURL + pgtest.Schema(t)
	if code, _, errOut := runCmd(t, "", "client", "create", "--init", "--id", "app", "--quiet", "--store", u); code != 0 {
		t.Fatalf("client create: exit %d, %q", code, errOut)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var bases [2]string
	dones := make(chan int, 2)
	for i := range bases {
		pr, pw := io.Pipe()
		go func() {
			dones <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--store", u,
				"--throttle-pair", "2", "--throttle-source", "100", "--throttle-account", "100"}, nil, pw, io.Discard)
			pw.Close()
		}()
		lines := bufio.NewReader(pr)
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("serve output: %v", err)
		}
		go func() { _, _ = io.Copy(io.Discard, lines) }()
		_, bases[i], _ = strings.Cut(strings.TrimSpace(line), " on ")
	}
	defer func() {
		cancel()
		for range bases {
			if code := <-dones; code != 0 {
				t.Errorf("serve exited %d", code)
			}
		}
	}()
	try := func(base string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("app", "wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	a, b := bases[0], bases[1]
	// The fleet's 2nd failure locks b for 1s, the 3rd (a's second) a for
	// 2s: the 429s come well within the second.
	for i, step := range []struct {
		base string
		want int
	}{{a, 401}, {b, 401}, {a, 401}, {a, 429}, {b, 429}} {
		if got := try(step.base); got != step.want {
			t.Fatalf("attempt %d: %d, want %d", i+1, got, step.want)
		}
	}
}
