package redis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/fleettest"
)

// handles opens two Stores on a fresh prefix and an Age that moves the
// shared state's times back: failure counts' tats, and leases' TTLs.
func handles[T any](t *testing.T, as func(s store.Store) T) fleettest.Handles[T] {
	prefix := newPrefix(t)
	a, b := open(t, prefix, nil), open(t, prefix, nil)
	return fleettest.Handles[T]{A: as(a), B: as(b), Age: func(t *testing.T, d time.Duration) {
		t.Helper()
		opts, _ := goredis.ParseURL(testURL)
		c := goredis.NewClient(opts)
		defer c.Close()
		ctx := t.Context()
		iter := c.Scan(ctx, 0, prefix+"fail:*", 1000).Iterator()
		for iter.Next(ctx) {
			tat, err := c.Get(ctx, iter.Val()).Int64()
			if err == nil {
				err = c.Set(ctx, iter.Val(), strconv.FormatInt(tat-d.Microseconds(), 10), goredis.KeepTTL).Err()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		iter = c.Scan(ctx, 0, prefix+"lease:*", 1000).Iterator()
		for iter.Next(ctx) {
			ttl, err := c.PTTL(ctx, iter.Val()).Result()
			if err == nil && ttl > 0 {
				if ttl -= d; ttl > 0 {
					err = c.PExpire(ctx, iter.Val(), ttl).Err()
				} else {
					err = c.Del(context.WithoutCancel(ctx), iter.Val()).Err()
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		iter = c.Scan(ctx, 0, prefix+"seen:*", 1000).Iterator()
		for iter.Next(ctx) {
			marks, err := c.ZRangeWithScores(ctx, iter.Val(), 0, -1).Result()
			for _, m := range marks {
				if err == nil {
					err = c.ZAdd(ctx, iter.Val(), goredis.Z{Score: m.Score - float64(d.Microseconds()), Member: m.Member}).Err()
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}}
}

func TestFailureCounter(t *testing.T) {
	fleettest.RunFailureCounter(t, func(t *testing.T) fleettest.Handles[store.FailureCounter] {
		return handles(t, func(s store.Store) store.FailureCounter { return s.(store.FailureCounter) })
	})
}

func TestFamiliarSources(t *testing.T) {
	fleettest.RunFamiliarSources(t, func(t *testing.T) fleettest.Handles[store.FamiliarSources] {
		return handles(t, func(s store.Store) store.FamiliarSources { return s.(store.FamiliarSources) })
	})
}

func TestLeaser(t *testing.T) {
	fleettest.RunLeaser(t, func(t *testing.T) fleettest.Handles[store.Leaser] {
		return handles(t, func(s store.Store) store.Leaser { return s.(store.Leaser) })
	})
}

// A failure count expires in Redis when it has been forgotten, and keys
// are opaque: the prefix, "fail:" and the hex of the key.
func TestFailureCountExpires(t *testing.T) {
	prefix := newPrefix(t)
	s := open(t, prefix, nil)
	if _, err := s.CountFailures(t.Context(), []store.Failure{{Key: "ab", Forget: time.Minute}, {Key: "cd", Forget: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CountFailures(t.Context(), []store.Failure{{Key: "ab", Forget: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	opts, _ := goredis.ParseURL(testURL)
	c := goredis.NewClient(opts)
	defer c.Close()
	for key, want := range map[string]time.Duration{"6162": 2 * time.Minute, "6364": time.Minute} {
		ttl, err := c.PTTL(t.Context(), prefix+"fail:"+key).Result()
		if err != nil || ttl > want || ttl < want-10*time.Second {
			t.Errorf("PTTL of %s: %v, %v; want about %v", key, ttl, err, want)
		}
	}
}
