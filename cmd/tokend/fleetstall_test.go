package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/store/storetest"
)

// stallTimeout is the instances' --store-timeout in testFleetDatabaseStall.
const stallTimeout = 200 * time.Millisecond

// A partition between two instances and their database, through a proxy
// that holds bytes (neither forwards nor closes), with --store-timeout
// 200ms: a refresh alone (on a pooled connection) and many at once (on
// new connections too) are answered 503 temporarily_unavailable with
// Retry-After within the timeout and a little slack, /readyz is 503; a
// client that gives up meanwhile is counted as client_closed_request,
// never server_error, and logged as no error. After the restore every
// instance is ready again and the token presented during the stall
// rotates.
func testFleetDatabaseStall(t *testing.T, fs fleetStore) {
	at := fs.fresh(t)
	p := storetest.NewProxy(t, fs.addr)
	f := newFleet(t, at(fs.addr), at(p.Addr()), 2, 0, "--store-timeout", stallTimeout.String(), "--log-level", "debug")
	ctx := t.Context()
	rt := f.login(ctx, f.nodes[0]).str("refresh_token")
	var wg sync.WaitGroup
	for _, nd := range f.nodes { // fill the pools
		for range 4 {
			wg.Go(func() { f.get(ctx, nd, "/readyz") })
		}
	}
	wg.Wait()
	pooled := p.Open()

	p.Stall()
	limit := stallTimeout + storetest.DeadlineSlack
	unavailable := func(what string, a answer) {
		if unavailableAnswer(t, what, a) && a.took > limit {
			t.Errorf("%s: answered after %v; want within %v", what, a.took, limit)
		}
	}
	unavailable("A: a refresh alone", f.refresh(ctx, f.nodes[0], rt))
	for i := range pooled + 4 {
		nd := f.nodes[i%2]
		wg.Go(func() { unavailable(nd.name+": a refresh of many at once", f.refresh(ctx, nd, rt)) })
	}
	wg.Wait()
	for _, nd := range f.nodes {
		if a := f.get(ctx, nd, "/readyz"); a.status != http.StatusServiceUnavailable || a.took > limit {
			t.Errorf("%s: /readyz during the stall: %v after %v; want 503 within %v", nd.name, a, a.took, limit)
		}
	}

	// A client that gives up before the store's deadline.
	hctx, cancel := context.WithTimeout(ctx, stallTimeout/4)
	if a := f.refresh(hctx, f.nodes[1], rt); a.err == nil {
		t.Errorf("B: a refresh whose client gave up after %v: %v", stallTimeout/4, a)
	}
	cancel()
	// B's handler may still be running: wait for its metric.
	wctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	const gone = `tokend_request_failures_total{endpoint="token",error="client_closed_request"} 1`
	for m := f.metrics(ctx, f.nodes[1]); !strings.Contains(m, gone); m = f.metrics(ctx, f.nodes[1]) {
		select {
		case <-wctx.Done():
			t.Fatalf("B's metrics lack %s:\n%s", gone, m)
		case <-tick.C:
		}
	}

	p.Restore()
	for _, nd := range f.nodes {
		wg.Go(func() { f.waitReady(ctx, nd, 20*time.Second) })
	}
	wg.Wait()
	if a := f.refresh(ctx, f.nodes[1], rt); a.status != http.StatusOK || a.str("refresh_token") == "" {
		t.Fatalf("B: the refresh after the restore: %v; want 200 with a new refresh token", a)
	}
	for _, nd := range f.nodes {
		if m := f.metrics(ctx, nd); strings.Contains(m, `error="server_error"`) {
			t.Errorf("%s counted server errors:\n%s", nd.name, m)
		}
		if log := nd.log.String(); strings.Contains(log, "internal error") {
			t.Errorf("%s logged an internal error:\n%s", nd.name, log)
		}
	}
	if log := f.nodes[1].log.String(); !strings.Contains(log, `level=DEBUG msg="client went away"`) {
		t.Errorf("B did not log the client that went away at debug level:\n%s", log)
	}
}

// metrics is nd's /metrics page, empty if it cannot be had.
func (f *fleet) metrics(ctx context.Context, nd *node) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, nd.base+"/metrics", nil)
	if err != nil {
		return ""
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
