package server_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/tokend/tokend/server"
)

// /metrics has tokend_store_up, 1 while the store answers and 0 while it
// fails, and the latency of the scrape's probe.
func TestStoreUpGauge(t *testing.T) {
	var disk *fullDisk
	e := newEnv(t, func(c *server.Config) {
		disk = &fullDisk{Store: c.Store}
		c.Store = disk
	})
	scrape := func() string {
		w := httptest.NewRecorder()
		e.srv.Metrics().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return w.Body.String()
	}
	up := regexp.MustCompile(`(?m)^tokend_store_up (\d)$`)
	ping := regexp.MustCompile(`(?m)^tokend_store_ping_seconds [0-9.e+-]+$`)
	m := scrape()
	if g := up.FindStringSubmatch(m); g == nil || g[1] != "1" || !ping.MatchString(m) {
		t.Fatalf("a working store: %v\n%s", g, m)
	}
	disk.failing.Store(true)
	if g := up.FindStringSubmatch(scrape()); g == nil || g[1] != "0" {
		t.Fatalf("a failing store: %v", g)
	}
	disk.failing.Store(false)
	if g := up.FindStringSubmatch(scrape()); g == nil || g[1] != "1" {
		t.Fatalf("the store back: %v", g)
	}
}
