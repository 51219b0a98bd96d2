package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
)

// fullDisk is a store whose writes fail as a full disk makes them fail,
// while failing is set.
type fullDisk struct {
	store.Store
	failing atomic.Bool
}

var errFull = fmt.Errorf("sqlite: database or disk is full: %w", store.ErrUnavailable)

func (d *fullDisk) CreateFamily(ctx context.Context, f store.Family) error {
	if d.failing.Load() {
		return errFull
	}
	return d.Store.CreateFamily(ctx, f)
}

func (d *fullDisk) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	if d.failing.Load() {
		return store.RotateResult{}, errFull
	}
	return d.Store.Rotate(ctx, req)
}

func (d *fullDisk) Ping(ctx context.Context) error {
	if d.failing.Load() {
		return errFull
	}
	return d.Store.Ping(ctx)
}

// A full disk is 503 temporarily_unavailable with Retry-After, /readyz is
// not ready while writes fail, the log gets one line per interval with the
// count, and everything recovers by itself.
func TestStoreWriteFailures(t *testing.T) {
	var disk *fullDisk
	e := newEnv(t, func(c *server.Config) {
		disk = &fullDisk{Store: c.Store}
		c.Store = disk
	})
	rt := e.login().str("refresh_token")
	ready := func() int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/readyz", nil)
		return e.do(req).status
	}
	if got := ready(); got != 200 {
		t.Fatalf("readyz before: %d", got)
	}

	disk.failing.Store(true)
	answers := []answer{e.post("/oauth/token", appID, appSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}})}
	for i := range 100 {
		if i == 50 {
			e.clock.Advance(11 * time.Second) // a second log line
		}
		answers = append(answers, e.refresh(rt))
	}
	for i, a := range answers {
		if a.status != http.StatusServiceUnavailable || a.str("error") != "temporarily_unavailable" || a.header.Get("Retry-After") != "5" {
			t.Fatalf("request %d while the disk is full: %d %v %v", i, a.status, a.header, a.body)
		}
	}
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("readyz while writes fail: %d", got)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "store unavailable"); n != 2 {
		t.Fatalf("%d log lines for 101 failures and a failed probe, want 2 (one per 10 s):\n%s", n, logs)
	}
	// The first line stands for 1 failure; the second for the 50 refreshes
	// of the first interval after the first, and the one that opened the
	// second interval.
	if !strings.Contains(logs, "failures=1 ") || !strings.Contains(logs, "failures=51 ") {
		t.Errorf("log lines do not count the failures:\n%s", logs)
	}

	// The disk has room again: the first request works, and /readyz is
	// ready once no request has failed for Retry-After.
	disk.failing.Store(false)
	e.clock.Advance(4 * time.Second)
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("readyz 4 s after the last failure: %d", got)
	}
	e.clock.Advance(time.Second)
	if got := ready(); got != 200 {
		t.Fatalf("readyz 5 s after the last failure: %d", got)
	}
	if !strings.Contains(e.logs.String(), `msg="store available again" failures=50`) {
		t.Errorf("recovery not logged with the failures since the last line:\n%s", e.logs.String())
	}
	if a := e.refresh(rt); a.status != 200 {
		t.Fatalf("refresh after recovery: %d %v", a.status, a.body)
	}
}
