package redis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/redis"
	"github.com/tokend/tokend/store/storetest"
)

// An outage of the server, simulated by cutting a proxy between the store
// and the shared Redis: see storetest.RunOutage.
func TestOutage(t *testing.T) {
	prefix := newPrefix(t)
	p := storetest.NewProxy(t, "127.0.0.1:6379")
	s, err := redis.Open(t.Context(), strings.Replace(testURL, "127.0.0.1:6379", p.Addr(), 1), &redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	storetest.RunOutage(t, s, p)
}

// A link to Redis that holds bytes (a partition) or resets connections,
// under a store deadline of 200ms: every call, on pooled and on new
// connections, fails with store.ErrUnavailable within it. See
// storetest.RunDeadline.
func TestDeadline(t *testing.T) {
	for _, mode := range []string{"stall", "cut"} {
		t.Run(mode, func(t *testing.T) {
			p := storetest.NewProxy(t, "127.0.0.1:6379")
			s, err := redis.Open(t.Context(), strings.Replace(testURL, "127.0.0.1:6379", p.Addr(), 1), &redis.Options{Prefix: newPrefix(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			storetest.RunDeadline(t, store.WithTimeout(s, 200*time.Millisecond), p, 200*time.Millisecond, mode == "stall")
		})
	}
}
