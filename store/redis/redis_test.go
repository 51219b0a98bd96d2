package redis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/redis"
	"github.com/tokend/tokend/store/storetest"
)

// testURL is the Redis 7 these machines run.
const testURL = "redis://127.0.0.1:6379/0"

// reachable fails the test in CI, and skips it elsewhere, when no Redis
// answers at testURL.
func reachable(t testing.TB) {
	t.Helper()
	opts, _ := goredis.ParseURL(testURL)
	c := goredis.NewClient(opts)
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Redis at %s: %v", testURL, err)
		}
		t.Skipf("no Redis at %s (%v): start one (redis-server --port 6379) to run these tests", testURL, err)
	}
}

// newPrefix returns a fresh key prefix whose keys are deleted (SCAN+DEL)
// when the test ends.
func newPrefix(t testing.TB) string {
	t.Helper()
	reachable(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "tokendtest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		opts, _ := goredis.ParseURL(testURL)
		c := goredis.NewClient(opts)
		defer c.Close()
		ctx := context.Background()
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

func open(t testing.TB, prefix string, opts *redis.Options) *redis.Store {
	t.Helper()
	if opts == nil {
		opts = &redis.Options{}
	}
	opts.Prefix = prefix
	s, err := redis.Open(t.Context(), testURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, newPrefix(t), nil) })
}

// Two Opens with one prefix, as two processes would have.
func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		prefix := newPrefix(t)
		return open(t, prefix, nil), open(t, prefix, nil)
	})
}

// Every key of a family, and the index entries of its tokens, expire at
// the family's absolute expiry plus the default margin, so that no sweeper
// is needed. (Concurrent rotation across handles is storetest.RunShared's.)
func TestKeysExpireWithTheFamily(t *testing.T) {
	prefix := newPrefix(t)
	a := open(t, prefix, nil)
	now := time.Now().UTC().Truncate(time.Microsecond)
	f := store.Family{ID: "f", ClientID: "c", Subject: "s", CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour)}
	old, next := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	if err := a.CreateFamily(t.Context(), f, store.RefreshToken{Hash: old, IssuedAt: now}); err != nil {
		t.Fatal(err)
	}
	if res, err := a.Rotate(t.Context(), store.RotateRequest{Old: old, New: next, Now: now, Grace: time.Minute, IdleExpiresAt: now.Add(time.Hour)}); err != nil || res.Outcome != store.Rotated {
		t.Fatalf("Rotate: %v, %v", res.Outcome, err)
	}
	// Every key of the family, and both index entries, expire at the
	// family's absolute expiry plus the default margin.
	opts, _ := goredis.ParseURL(testURL)
	c := goredis.NewClient(opts)
	defer c.Close()
	want := f.ExpiresAt.Add(redis.DefaultExpiryMargin).UnixMilli()
	fam := prefix + "{fam:f}"
	for _, k := range []string{fam, fam + ":toks", fam + ":tok:" + hex.EncodeToString(old), fam + ":tok:" + hex.EncodeToString(next),
		prefix + "tokidx:" + hex.EncodeToString(old), prefix + "tokidx:" + hex.EncodeToString(next)} {
		if got, err := c.Do(t.Context(), "PEXPIRETIME", k).Int64(); err != nil || got != want {
			t.Errorf("PEXPIRETIME %s = %d %v, want %d", strings.TrimPrefix(k, prefix), got, err, want)
		}
	}
}

// A reused token revokes the family for both handles, and the successor
// of a refused rotation is not found.
func TestSharedReuseRevokesEverywhere(t *testing.T) {
	prefix := newPrefix(t)
	a, b := open(t, prefix, nil), open(t, prefix, nil)
	now := time.Now().UTC().Truncate(time.Microsecond)
	f := store.Family{ID: "f", ClientID: "c", Subject: "s", CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour)}
	h0, h1 := bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{4}, 32)
	if err := a.CreateFamily(t.Context(), f, store.RefreshToken{Hash: h0, IssuedAt: now}); err != nil {
		t.Fatal(err)
	}
	req := store.RotateRequest{Old: h0, New: h1, Now: now, Grace: time.Second, IdleExpiresAt: now.Add(time.Hour)}
	if res, err := a.Rotate(t.Context(), req); err != nil || res.Outcome != store.Rotated {
		t.Fatalf("rotate through a: %v %v", res.Outcome, err)
	}
	req.Now = now.Add(2 * time.Second)
	if res, err := b.Rotate(t.Context(), req); err != nil || res.Outcome != store.ReuseDetected {
		t.Fatalf("replay through b after grace: %v %v", res.Outcome, err)
	}
	_, err := a.Rotate(t.Context(), store.RotateRequest{Old: h1, New: bytes.Repeat([]byte{5}, 32), Now: req.Now, IdleExpiresAt: now.Add(time.Hour)})
	if !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("successor through a after reuse: %v, want ErrRevoked", err)
	}
	if _, _, err := a.GetRefreshToken(t.Context(), bytes.Repeat([]byte{5}, 32)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused successor: %v, want ErrNotFound", err)
	}
}

// This machine's Redis runs with persistence off: Durability says so, and
// Open warns once through the logger.
func TestDurabilityWarnsWithoutPersistence(t *testing.T) {
	prefix := newPrefix(t)
	opts, _ := goredis.ParseURL(testURL)
	c := goredis.NewClient(opts)
	defer c.Close()
	ao, err := c.ConfigGet(t.Context(), "appendonly").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ao["appendonly"] != "no" {
		t.Skipf("this Redis runs appendonly %q; the test expects persistence off", ao["appendonly"])
	}
	var log bytes.Buffer
	s := open(t, prefix, &redis.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	d := s.Durability()
	if !d.Known || d.AppendOnly != "no" || !strings.Contains(d.Warning(), "appendonly is off") {
		t.Fatalf("Durability = %+v, warning %q", d, d.Warning())
	}
	if got := strings.Count(log.String(), "level=WARN"); got != 1 || !strings.Contains(log.String(), "appendonly=no") {
		t.Fatalf("Open logged %q; want one warning naming appendonly=no", log.String())
	}
}

func TestDurabilityWarning(t *testing.T) {
	for _, tc := range []struct {
		d    redis.Durability
		want string // a substring of the warning; "" for none
	}{
		{redis.Durability{Known: true, AppendOnly: "yes", AppendFsync: "always"}, ""},
		{redis.Durability{Known: true, AppendOnly: "yes", AppendFsync: "everysec"}, "last second"},
		{redis.Durability{Known: true, AppendOnly: "yes", AppendFsync: "no"}, "30 s"},
		{redis.Durability{Known: true, AppendOnly: "no", AppendFsync: "always"}, "appendonly is off"},
		{redis.Durability{}, "CONFIG refused"},
	} {
		w := tc.d.Warning()
		if (tc.want == "") != (w == "") || !strings.Contains(w, tc.want) {
			t.Errorf("%+v: warning %q, want one containing %q", tc.d, w, tc.want)
		}
	}
}

// A server that does not answer is ErrUnavailable, at Open and after.
func TestUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := redis.Open(ctx, "redis://127.0.0.1:1/0?max_retries=-1", nil)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of a closed port: %v, want ErrUnavailable", err)
	}
	s := open(t, newPrefix(t), nil)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	_ = s.Close()
	if err := s.Ping(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping after Close: %v, want ErrUnavailable", err)
	}
}

func TestOpenRefusesBraces(t *testing.T) {
	reachable(t)
	if _, err := redis.Open(t.Context(), testURL, &redis.Options{Prefix: "a{b}:"}); err == nil {
		t.Fatal("a prefix with a hash tag was accepted")
	}
}
