package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
)

// The state the instances of a fleet share: the throttle's failure
// counts, Pfail:HEX (HEX the hex of the opaque key; a string holding the
// bucket's theoretical arrival time in µs, expiring when it has passed),
// and the leases, Please:NAME (a string holding the holder, expiring at
// the end of the lease). Every time is Redis's clock (TIME, PX).

var (
	_ store.FailureCounter = (*Store)(nil)
	_ store.Leaser         = (*Store)(nil)
)

// countFailureScript counts one failure at one key, on Redis's clock
// (scripts replicate their effects, so TIME is allowed): tat = max(tat,
// now) + forget, kept until tat.
//
// KEYS: the count. ARGV: forget (µs). Returns the count,
// ceil((tat - now) / forget).
var countFailureScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local forget = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
tat = tat + forget
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
return math.ceil((tat - now) / forget)
`)

// CountFailures implements store.FailureCounter: one script per key, all
// in one pipeline (one round trip; each key is a slot of its own in a
// cluster).
func (s *Store) CountFailures(ctx context.Context, fs []store.Failure) ([]int64, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	seen := make(map[string]bool, len(fs))
	for _, f := range fs {
		if f.Key == "" || len(f.Key) > 64 || f.Forget <= 0 {
			return nil, errors.New("redis: count failures: key empty or longer than 64 bytes, or Forget not positive")
		}
		if seen[f.Key] {
			return nil, errors.New("redis: count failures: a key appears twice")
		}
		seen[f.Key] = true
	}
	// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT, and
	// the script is short and sent on the failure path only.
	cmds := make([]*goredis.Cmd, len(fs))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, f := range fs {
			cmds[i] = countFailureScript.Eval(ctx, p, []string{s.p + "fail:" + hex.EncodeToString([]byte(f.Key))}, max(f.Forget.Microseconds(), 1))
		}
		return nil
	})
	if err != nil {
		return nil, wrap("count failures", err)
	}
	out := make([]int64, len(fs))
	for i, c := range cmds {
		if out[i], err = c.Int64(); err != nil {
			return nil, wrap("count failures", err)
		}
	}
	return out, nil
}

// leaseScript takes the lease if it is free or renews it if the holder
// holds it, for PX ms.
//
// KEYS: the lease. ARGV: holder, ttl (ms). Returns 1 if held, else 0.
var leaseScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// releaseScript deletes the lease if the holder holds it.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Lease implements store.Leaser: one script, a compare-and-set on the
// holder.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("redis: lease: ttl not positive")
	}
	n, err := leaseScript.Run(ctx, s.rdb, []string{s.p + "lease:" + name}, holder, max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return false, wrap("lease", err)
	}
	return n == 1, nil
}

// Release implements store.Leaser.
func (s *Store) Release(ctx context.Context, name, holder string) error {
	return wrap("release lease", releaseScript.Run(ctx, s.rdb, []string{s.p + "lease:" + name}, holder).Err())
}
