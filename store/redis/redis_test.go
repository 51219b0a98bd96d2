package redis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/redis"
	"github.com/tokend/tokend/store/redis/redistest"
	"github.com/tokend/tokend/store/storetest"
)

// testURL is the Redis 7 these machines run.
const testURL = redistest.ServerURL

// reachable and newPrefix are redistest's.
var (
	reachable = redistest.Reachable
	newPrefix = redistest.Prefix
)

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

// The ordinary suite runs on fixed times in 2030: the caller's clock.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, newPrefix(t), &redis.Options{CallerClock: true})
	})
}

// Two Opens with one prefix, as two processes would have.
func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		prefix := newPrefix(t)
		return open(t, prefix, &redis.Options{CallerClock: true}), open(t, prefix, &redis.Options{CallerClock: true})
	})
}

// Two Opens with one prefix, judging on Redis's TIME (the default).
func TestClock(t *testing.T) {
	storetest.RunClock(t, func(t *testing.T) (store.Store, store.Store) {
		prefix := newPrefix(t)
		return open(t, prefix, nil), open(t, prefix, nil)
	})
}

// keysUnder lists the keys under prefix, without it, sorted, but for the
// schema key that Open writes once (redis.SchemaKey).
func keysUnder(t *testing.T, c *goredis.Client, prefix string) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(t.Context(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(t.Context()) {
		if k := strings.TrimPrefix(iter.Val(), prefix); k != redis.SchemaKey {
			keys = append(keys, k)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func client(t testing.TB) *goredis.Client {
	t.Helper()
	opts, _ := goredis.ParseURL(testURL)
	c := goredis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rotateN rotates the family id n times from the token cur of generation
// gen, on Redis's clock, and returns the last token and its generation.
func rotateN(t testing.TB, s *redis.Store, id string, cur []byte, gen int64, n int) ([]byte, int64) {
	t.Helper()
	for range n {
		next, err := rotateOnce(t.Context(), s, id, cur, gen)
		if err != nil {
			t.Fatal(err)
		}
		cur, gen = next, gen+1
	}
	return cur, gen
}

// rotateOnce rotates the token cur of generation gen of the family id to
// a new one, on Redis's clock, and returns the new one.
func rotateOnce(ctx context.Context, s *redis.Store, id string, cur []byte, gen int64) ([]byte, error) {
	next := make([]byte, 32)
	_, _ = rand.Read(next)
	now := time.Now()
	res, err := s.Rotate(ctx, store.RotateRequest{FamilyID: id, Generation: gen, Old: cur, New: next,
		Now: now, Grace: time.Minute, IdleExpiresAt: now.Add(time.Hour)})
	if err != nil || res.Outcome != store.Rotated {
		return nil, fmt.Errorf("rotation of %s at generation %d: %v %w", id, gen, res.Outcome, err)
	}
	return next, nil
}

// newFamily creates the family id of client "c" and subject "s" on
// Redis's clock and returns its first token.
func newFamily(t testing.TB, s *redis.Store, id string) []byte {
	t.Helper()
	now := time.Now()
	h := bytes.Repeat([]byte{1}, 32)
	f := store.Family{ID: id, ClientID: "c", Subject: "s", Scope: "read write", CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour), TokenHash: h}
	if err := s.CreateFamily(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	return h
}

// A family is one key however often it rotates, besides one entry in each
// of the three family indexes; that key expires at the family's absolute
// expiry plus the default margin, so that no sweeper is needed.
func TestFamilyIsOneKey(t *testing.T) {
	prefix := newPrefix(t)
	s := open(t, prefix, nil)
	c := client(t)
	newFamily(t, s, "f")
	got, err := s.GetFamily(t.Context(), "f")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = rotateN(t, s, "f", got.TokenHash, 0, 5)
	if keys := fmt.Sprint(keysUnder(t, c, prefix)); keys != "[cfams:c fams sfams:s {fam:f}]" {
		t.Fatalf("keys after 5 rotations: %s", keys)
	}
	want := got.ExpiresAt.Add(redis.DefaultExpiryMargin).UnixMilli()
	if pxt, err := c.Do(t.Context(), "PEXPIRETIME", prefix+"{fam:f}").Int64(); err != nil || pxt != want {
		t.Fatalf("PEXPIRETIME = %d %v, want %d (the family's expiry plus the margin)", pxt, err, want)
	}
}

// The index sets leave nothing behind: a client's or subject's set expires
// with the last of its families, and an ID whose family Redis expired by
// its TTL is taken out of the sets of the live families by DeleteExpired.
func TestIndexSetsLeaveNothing(t *testing.T) {
	ctx := t.Context()
	prefix := newPrefix(t)
	s := open(t, prefix, nil)
	c := client(t)
	now := time.Now()
	create := func(id, client, subject string, life time.Duration) {
		t.Helper()
		f := store.Family{ID: id, ClientID: client, Subject: subject, CreatedAt: now, LastUsedAt: now,
			IdleExpiresAt: now.Add(life), ExpiresAt: now.Add(life), TokenHash: bytes.Repeat([]byte{1}, 32)}
		if err := s.CreateFamily(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	pxt := func(key string) int64 {
		t.Helper()
		n, err := c.Do(ctx, "PEXPIRETIME", prefix+key).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	create("long", "app", "alice", 48*time.Hour)
	create("short", "app", "alice", time.Hour)
	if got, want := pxt("sfams:alice"), pxt("{fam:long}"); got != want || got <= 0 {
		t.Fatalf("sfams:alice expires at %d, want %d (its longest family's expiry)", got, want)
	}
	if got, want := pxt("cfams:app"), pxt("{fam:long}"); got != want {
		t.Fatalf("cfams:app expires at %d, want %d", got, want)
	}
	// Redis expires "short" (here: deleted as its TTL would).
	if err := c.Del(ctx, prefix+"{fam:short}").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"fams", "cfams:app", "sfams:alice"} {
		ids, err := c.SMembers(ctx, prefix+key).Result()
		if err != nil || fmt.Sprint(ids) != "[long]" {
			t.Fatalf("%s = %v %v after DeleteExpired; want only the live family", key, ids, err)
		}
	}
}

// memoryUsage is MEMORY USAGE key SAMPLES 0 (every element counted), in
// bytes.
func memoryUsage(t testing.TB, c *goredis.Client, key string) int64 {
	t.Helper()
	n, err := c.MemoryUsage(t.Context(), key, 0).Result()
	if err != nil {
		t.Fatalf("MEMORY USAGE %s: %v", key, err)
	}
	return n
}

// A family takes the same memory after 10,000 rotations as after one: the
// family hash and its index entries do not grow with rotations. (The
// generation's digits may add a few bytes.)
func TestMemoryPerFamilyIsConstant(t *testing.T) {
	prefix := newPrefix(t)
	s := open(t, prefix, nil)
	c := client(t)
	cur, gen := rotateN(t, s, "f", newFamily(t, s, "f"), 0, 1)
	keys := []string{"{fam:f}", "fams", "cfams:c", "sfams:s"}
	measure := func() []int64 {
		var out []int64
		for _, k := range keys {
			out = append(out, memoryUsage(t, c, prefix+k))
		}
		return out
	}
	after1 := measure()
	_, _ = rotateN(t, s, "f", cur, gen, 9_999)
	after10k := measure()
	for i, k := range keys {
		t.Logf("MEMORY USAGE %s: %d B after 1 rotation, %d B after 10,000", k, after1[i], after10k[i])
		if d := after10k[i] - after1[i]; d < -8 || d > 8 {
			t.Errorf("%s: %d B after 1 rotation, %d B after 10,000; want within 8 B", k, after1[i], after10k[i])
		}
	}
	if n := len(keysUnder(t, c, prefix)); n != len(keys) {
		t.Errorf("%d keys after 10,000 rotations, want %d", n, len(keys))
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

// A key hash stored before keys had a use has no "use" field: it reads as
// an access key, counts as the active access key, and leaves room for an
// ID key beside it.
func TestKeyWithoutUse(t *testing.T) {
	ctx := t.Context()
	prefix := newPrefix(t)
	s := open(t, prefix, &redis.Options{CallerClock: true})
	c := client(t)
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	old := store.Key{ID: "old", Algorithm: "EdDSA", Private: []byte("old"), CreatedAt: at}
	if err := s.CreateKey(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := c.HDel(ctx, prefix+"key:old", "use").Err(); err != nil { // as an older tokend stored it
		t.Fatal(err)
	}
	ks, err := s.ListKeys(ctx)
	if err != nil || len(ks) != 1 || ks[0].ID != "old" || ks[0].Use != store.UseAccess {
		t.Fatalf("ListKeys = %+v, %v; want the old key, of use access", ks, err)
	}
	if got, err := s.CreateKeyIfNone(ctx, store.Key{ID: "a2", Algorithm: "EdDSA", Private: []byte("x"), CreatedAt: at}); err != nil || got.ID != "old" {
		t.Fatalf("CreateKeyIfNone of an access key = %+v, %v; want the old key", got, err)
	}
	id := store.Key{ID: "i1", Algorithm: "RS256", Private: []byte("i1"), Use: store.UseID, CreatedAt: at}
	if got, err := s.CreateKeyIfNone(ctx, id); err != nil || got.ID != "i1" || got.Use != store.UseID {
		t.Fatalf("CreateKeyIfNone of an ID key = %+v, %v; want it stored", got, err)
	}
	next := store.Key{ID: "a3", Algorithm: "EdDSA", Private: []byte("a3"), CreatedAt: at, NotBefore: at.Add(time.Minute)}
	if err := s.RotateKey(ctx, next, "old"); err != nil {
		t.Fatalf("RotateKey from the old key: %v", err)
	}
	if ks, err = s.ListKeys(ctx); err != nil || len(ks) != 3 || !ks[0].RetiredAt.Equal(next.NotBefore) || !ks[1].RetiredAt.IsZero() {
		t.Fatalf("after rotating the access key: %+v, %v; want the old key retired and the ID key not", ks, err)
	}
}

// Open writes the schema key on a new prefix; with RequireSchema it writes
// nothing and refuses a prefix without it (store.ErrNoSchema), and opens
// one that has it.
func TestRequireSchema(t *testing.T) {
	prefix := newPrefix(t)
	c := client(t)
	if _, err := redis.Open(t.Context(), testURL, &redis.Options{Prefix: prefix, RequireSchema: true}); !errors.Is(err, store.ErrNoSchema) {
		t.Fatalf("RequireSchema on an empty prefix: %v", err)
	}
	if n, err := c.Exists(t.Context(), prefix+redis.SchemaKey, prefix+"heartbeat").Result(); err != nil || n != 0 {
		t.Fatalf("RequireSchema wrote %d keys (%v)", n, err)
	}
	open(t, prefix, nil)
	if v, err := c.Get(t.Context(), prefix+redis.SchemaKey).Int(); err != nil || v != redis.SchemaVersion {
		t.Fatalf("schema key %d %v", v, err)
	}
	s, err := redis.Open(t.Context(), testURL, &redis.Options{Prefix: prefix, RequireSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := c.Set(t.Context(), prefix+redis.SchemaKey, redis.SchemaVersion+1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := redis.Open(t.Context(), testURL, &redis.Options{Prefix: prefix}); err == nil || !strings.Contains(err.Error(), "newer than this build's") {
		t.Fatalf("a newer schema: %v", err)
	}
}
