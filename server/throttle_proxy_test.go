package server_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store/memory"
)

// X-Forwarded-For is believed only from a trusted proxy, and only from the
// right: what the client wrote to the left of the proxy's entry is
// ignored.
func TestThrottleSourceBehindProxy(t *testing.T) {
	lock := func(e *env, src string) {
		t.Helper()
		for range 5 {
			if a := e.postFrom(src, "/oauth/token", appID, "wrong", clientCredentials); a.status != http.StatusUnauthorized {
				t.Fatalf("guess: %d", a.status)
			}
		}
	}
	t.Run("untrusted peer", func(t *testing.T) {
		e := newEnv(t, nil)
		lock(e, "203.0.113.1")
		// The header is ignored: every request is the loopback peer's.
		is429(t, e.postFrom("198.51.100.2", "/oauth/token", appID, appSecret, clientCredentials))
	})
	t.Run("trusted proxy", func(t *testing.T) {
		e := newEnv(t, trustLoopback)
		lock(e, "203.0.113.1")
		if a := e.postFrom("198.51.100.2", "/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
			t.Fatalf("another source: %d %v", a.status, a.body)
		}
		// The locked client claims another address to the left of the
		// one the proxy appended: ignored.
		is429(t, e.postFrom("198.51.100.2, 203.0.113.1", "/oauth/token", appID, appSecret, clientCredentials))
		// The same across header lines.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/oauth/token", strings.NewReader(clientCredentials.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Add("X-Forwarded-For", "198.51.100.2")
		req.Header.Add("X-Forwarded-For", "203.0.113.1")
		req.SetBasicAuth(appID, appSecret)
		is429(t, e.do(req))
		// The proxy's own address is a source like any other.
		if a := e.post("/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
			t.Fatalf("no header: %d %v", a.status, a.body)
		}
	})
}

func TestThrottleConfig(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.Throttle.Disabled = true })
	for range 20 {
		if a := e.post("/oauth/token", appID, "wrong", clientCredentials); a.status != http.StatusUnauthorized {
			t.Fatalf("throttle disabled: %d", a.status)
		}
	}
	st := memory.New()
	ks, err := keys.Load(t.Context(), st, "EdDSA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, mod := range []func(*server.Config){
		func(c *server.Config) { c.Throttle.PerPair = -1 },
		func(c *server.Config) { c.Throttle.Delay, c.Throttle.MaxDelay = time.Minute, time.Second },
		func(c *server.Config) { c.Throttle.MaxDelay = 48 * time.Hour },
		func(c *server.Config) { c.Throttle.PerSource = 2_000_000 },
		func(c *server.Config) { c.TrustedProxies = []netip.Prefix{{}} },
	} {
		cfg := server.Config{Store: st, Signer: ks, Secret: make([]byte, 32), Issuer: "http://x"}
		mod(&cfg)
		if _, err := server.New(cfg); err == nil {
			t.Errorf("New accepted %+v, proxies %v", cfg.Throttle, cfg.TrustedProxies)
		}
	}
}
