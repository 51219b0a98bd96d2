package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/internal/clocktest"
	"github.com/tokend/tokend/keys"
	"github.com/tokend/tokend/server"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/redis"
)

// fleetEnvs returns two servers on two handles of one store, as two
// instances behind a load balancer would be, sharing a clock and the
// clients of newEnv; mod applies to both.
func fleetEnvs(t *testing.T, open func(t *testing.T) (store.Store, store.Store), mod func(*server.Config)) (*env, *env) {
	t.Helper()
	ctx := t.Context()
	a, b := open(t)
	clk := clocktest.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, c := range []store.Client{
		{ID: appID, SecretHash: server.HashClientSecret(appSecret), Grants: []string{"client_credentials", "refresh_token", "password"}},
		{ID: "spa", Grants: []string{"refresh_token", "password"}},
	} {
		if err := a.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var envs [2]*env
	for i, st := range []store.Store{a, b} {
		ks, err := keys.Load(ctx, st, "EdDSA", time.Hour, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		srv, issuer := serve(t, server.Config{Store: st, Signer: ks, Secret: testSecret, Now: clk.Now}, mod)
		envs[i] = &env{t: t, url: issuer, store: st, clock: clk, srv: srv}
	}
	return envs[0], envs[1]
}

// testFleetThrottle: wrong passwords from one source, sent to two
// instances in turn, lock it on both after the limit plus one (an
// instance learns of the fleet's lock at its own next failure), with the
// lock of the fleet's count; alone, each would have allowed the limit.
// Valid credentials go through as always, from where they usually come
// on any instance, also one started after the guesses; refresh tokens
// never lock.
func testFleetThrottle(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	const src, home = "203.0.113.77", "198.51.100.1"
	throttle := with(trustLoopback, cheapUsers, func(c *server.Config) {
		c.Throttle = server.Throttle{PerSource: 4, PerPair: 3, PerAccount: 100, Delay: time.Second, MaxDelay: time.Hour}
	})
	type step struct {
		e          *env
		status, ra int // ra: Retry-After of a 429
	}
	check := func(t *testing.T, steps []step, send func(e *env) answer) {
		t.Helper()
		for i, s := range steps {
			a := send(s.e)
			if a.status != s.status {
				t.Fatalf("attempt %d: %d %v, want %d", i+1, a.status, a.body, s.status)
			}
			if s.status == http.StatusTooManyRequests {
				if ra := is429(t, a); ra != s.ra {
					t.Fatalf("attempt %d: Retry-After %d, want %d", i+1, ra, s.ra)
				}
			}
		}
	}
	t.Run("Passwords", func(t *testing.T) {
		a, b := fleetEnvs(t, open, throttle)
		for _, e := range []*env{a, b} {
			if r := e.postFrom(home, "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")); r.status != http.StatusOK {
				t.Fatalf("login: %d %v", r.status, r.body)
			}
		}
		check(t, []step{
			{a, 400, 0}, {b, 400, 0}, {a, 400, 0}, // the fleet's 3rd: a locks
			{a, 429, 1},
			{b, 400, 0}, // b learns of it at its own next failure, the fleet's 4th
			{b, 429, 2}, {a, 429, 1},
		}, func(e *env) answer {
			return e.postFrom(src, "/oauth/token", appID, appSecret, passwordGrant("alice", "guess"))
		})
		// Other sources and users are not locked.
		if r := b.postFrom(home, "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")); r.status != http.StatusOK {
			t.Fatalf("alice from home: %d %v", r.status, r.body)
		}
	})
	t.Run("RefreshTokensNeverLock", func(t *testing.T) {
		a, b := fleetEnvs(t, open, throttle)
		valid := a.spaFamily("fam1")
		for i := range 40 {
			e := []*env{a, b}[i%2]
			if r := e.postFrom(src, "/oauth/token", "", "", spaRefresh(junkToken())); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
				t.Fatalf("junk %d: %d %v, want 400 invalid_grant", i, r.status, r.body)
			}
		}
		if r := b.postFrom(src, "/oauth/token", "", "", spaRefresh(valid)); r.status != http.StatusOK {
			t.Fatalf("a valid refresh token from the junk's source: %d %v", r.status, r.body)
		}
	})
	// The reported lockout: client app authenticates through a from
	// home; 24 wrong secrets from 24 addresses spread over a and b; the
	// right secret then works on both, from home and from a new pod
	// address, and on an instance started after the guesses.
	t.Run("ClientNeverLockedOut", func(t *testing.T) {
		a, b := fleetEnvs(t, open, with(throttle, func(c *server.Config) { c.Throttle.PerAccount = 20 }))
		if r := a.postFrom("10.1.1.2", "/oauth/token", appID, appSecret, clientCredentials); r.status != http.StatusOK {
			t.Fatalf("first: %d %v", r.status, r.body)
		}
		for i := range 24 {
			e := []*env{a, b}[i%2]
			if r := e.postFrom(fmt.Sprintf("203.0.113.%d", i), "/oauth/token", appID, "wrong", clientCredentials); r.status != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d %v", i, r.status, r.body)
			}
		}
		c := restarted(t, b, throttle)
		if r := c.postFrom("203.0.113.99", "/oauth/token", appID, "wrong", clientCredentials); r.status != http.StatusUnauthorized {
			t.Fatalf("a guess through the restarted instance: %d %v", r.status, r.body)
		}
		for _, e := range []*env{a, b, c} {
			for _, from := range []string{"10.1.1.2", "10.1.1.3"} {
				if r := e.postFrom(from, "/oauth/token", appID, appSecret, clientCredentials); r.status != http.StatusOK {
					t.Fatalf("the client from %s through %s: %d %v", from, e.url, r.status, r.body)
				}
			}
		}
	})
	// The same for a user's password: alice logs in through a from home;
	// 24 wrong passwords from 24 addresses over a and b lock her account;
	// from home she gets in through b, and through an instance started
	// after the lock; from a new address she waits.
	t.Run("UserNeverLockedOutFromHome", func(t *testing.T) {
		a, b := fleetEnvs(t, open, with(throttle, func(c *server.Config) { c.Throttle.PerAccount = 20 }))
		if r := a.postFrom("10.1.1.2", "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")); r.status != http.StatusOK {
			t.Fatalf("first: %d %v", r.status, r.body)
		}
		for i := range 24 {
			e := []*env{a, b}[i%2]
			e.postFrom(fmt.Sprintf("203.0.113.%d", i), "/oauth/token", appID, appSecret, passwordGrant("alice", "guess"))
		}
		for _, e := range []*env{a, b} {
			is429(t, e.postFrom("203.0.113.200", "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")))
		}
		if r := b.postFrom("10.1.1.2", "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")); r.status != http.StatusOK {
			t.Fatalf("alice from home through b: %d %v", r.status, r.body)
		}
		c := restarted(t, a, throttle)
		c.postFrom("203.0.113.201", "/oauth/token", appID, appSecret, passwordGrant("alice", "guess")) // learns the lock
		is429(t, c.postFrom("10.1.1.3", "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")))
		if r := c.postFrom("10.1.1.2", "/oauth/token", appID, appSecret, passwordGrant("alice", "wonderland")); r.status != http.StatusOK {
			t.Fatalf("alice from home through the restarted instance: %d %v", r.status, r.body)
		}
	})
}

// restarted returns a new server on e's store and clock, as e's instance
// is after a restart: its memory is gone, the store is not.
func restarted(t *testing.T, e *env, mod func(*server.Config)) *env {
	t.Helper()
	ks, err := keys.Load(t.Context(), e.store, "EdDSA", time.Hour, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv, issuer := serve(t, server.Config{Store: e.store, Signer: ks, Secret: testSecret, Now: e.clock.Now}, mod)
	return &env{t: t, url: issuer, store: e.store, clock: e.clock, srv: srv}
}

func TestFleetThrottlePostgres(t *testing.T) {
	testFleetThrottle(t, func(t *testing.T) (store.Store, store.Store) {
		u := pgtest.ServerURL + pgtest.Schema(t)
		var sts [2]store.Store
		for i := range sts {
			st, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			sts[i] = st
		}
		return sts[0], sts[1]
	})
}

// redisURL is the Redis of store/redis's tests.
const redisURL = "redis://127.0.0.1:6379/0"

func TestFleetThrottleRedis(t *testing.T) {
	testFleetThrottle(t, func(t *testing.T) (store.Store, store.Store) {
		opts, _ := goredis.ParseURL(redisURL)
		c := goredis.NewClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Ping(t.Context()).Err(); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("no Redis at %s: %v", redisURL, err)
			}
			t.Skipf("no Redis at %s (%v): start one (redis-server --port 6379) to run this test", redisURL, err)
		}
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		prefix := "tokendtest:" + hex.EncodeToString(b) + ":"
		t.Cleanup(func() {
			ctx := context.Background()
			iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
			if err := iter.Err(); err != nil {
				t.Errorf("cleaning up %s: %v", prefix, err)
			}
		})
		var sts [2]store.Store
		for i := range sts {
			st, err := redis.Open(t.Context(), redisURL, &redis.Options{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			sts[i] = st
		}
		return sts[0], sts[1]
	})
}

// countingCounter counts the calls of a FailureCounter that counts
// nothing (every count is 1).
type countingCounter struct{ calls atomic.Int64 }

func (c *countingCounter) CountFailures(_ context.Context, fs []store.Failure) ([]int64, error) {
	c.calls.Add(1)
	out := make([]int64, len(fs))
	for i := range out {
		out[i] = 1
	}
	return out, nil
}

// Successful logins, refreshes and client authentications never reach
// the FailureCounter; each failure reaches it once.
func TestFleetSuccessesCostNoRoundTrip(t *testing.T) {
	fc := &countingCounter{}
	e := newEnv(t, func(c *server.Config) { c.FailureCounter = fc })
	rt := e.login().str("refresh_token")
	for range 10 {
		a := e.refresh(rt)
		if a.status != http.StatusOK {
			t.Fatalf("refresh: %d %v", a.status, a.body)
		}
		rt = a.str("refresh_token")
		if a := e.post("/oauth/token", appID, appSecret, clientCredentials); a.status != http.StatusOK {
			t.Fatalf("client credentials: %d", a.status)
		}
	}
	if n := fc.calls.Load(); n != 0 {
		t.Fatalf("successes called the counter %d times", n)
	}
	e.post("/oauth/token", appID, "wrong", clientCredentials)
	e.refresh(junkToken()) // not a failure: refresh tokens are not throttled
	e.post("/oauth/token", appID, appSecret, passwordGrant("alice", "guess"))
	if n := fc.calls.Load(); n != 2 {
		t.Fatalf("2 failures called the counter %d times", n)
	}
}
