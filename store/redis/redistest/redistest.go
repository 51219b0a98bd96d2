// Package redistest gives tests a key prefix of their own on the shared
// test Redis (Redis 7 on 127.0.0.1:6379, database 0), whose keys are
// deleted when the test ends.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ServerURL is the shared test server's URL.
const ServerURL = "redis://127.0.0.1:6379/0"

// Reachable fails t, when the environment variable CI is set (CI must not
// pass by skipping), and skips it otherwise, if no Redis answers at
// ServerURL.
func Reachable(t testing.TB) {
	t.Helper()
	opts, _ := goredis.ParseURL(ServerURL)
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Redis at %s: %v", ServerURL, err)
		}
		t.Skipf("no Redis at %s (%v): start one (redis-server --port 6379) to run this test", ServerURL, err)
	}
}

// Prefix returns a key prefix of t's own, "tokendtest:HEX:", whose keys
// are deleted (SCAN and DEL) when t ends. It calls Reachable first.
func Prefix(t testing.TB) string {
	t.Helper()
	Reachable(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "tokendtest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		opts, _ := goredis.ParseURL(ServerURL)
		c := goredis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleaning up %s: %v", prefix, err)
		}
	})
	return prefix
}
