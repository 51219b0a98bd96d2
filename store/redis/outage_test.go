package redis_test

import (
	"strings"
	"testing"

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
