package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
)

// Familiar sources (store.FamiliarSources) are one sorted set per
// account, Pseen:HEX (HEX the hex of the opaque account key), whose
// members are the opaque source keys and whose scores are the ends of
// their marks in µs on Redis's clock; the set expires with its last
// mark.

var _ store.FamiliarSources = (*Store)(nil)

// markFamiliarScript marks one source, drops the account's ended marks
// and those beyond the newest limit, and keeps the set until its last
// mark ends.
//
// KEYS: the account's set. ARGV: source, keep (µs), limit. Returns the
// number of marks kept.
var markFamiliarScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local keep = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + keep, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[3])
if n > limit then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - limit - 1)
  n = limit
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) / 1000))
return n
`)

// familiarScript reports whether source's mark lasts still.
//
// KEYS: the account's set. ARGV: source. Returns 1 or 0.
var familiarScript = goredis.NewScript(`
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not ends then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if tonumber(ends) > now then return 1 end
return 0
`)

// MarkFamiliar implements store.FamiliarSources, in one script.
func (s *Store) MarkFamiliar(ctx context.Context, account, source string, keep time.Duration) error {
	if err := checkFamiliarKeys(account, source); err != nil {
		return err
	}
	if keep <= 0 {
		return errors.New("redis: mark familiar: keep not positive")
	}
	err := markFamiliarScript.Run(ctx, s.rdb, []string{s.seenKey(account)}, source, max(keep.Microseconds(), 1), store.FamiliarPerAccount).Err()
	return wrap("mark familiar", err)
}

// Familiar implements store.FamiliarSources, in one script.
func (s *Store) Familiar(ctx context.Context, account, source string) (bool, error) {
	if err := checkFamiliarKeys(account, source); err != nil {
		return false, err
	}
	n, err := familiarScript.Run(ctx, s.rdb, []string{s.seenKey(account)}, source).Int()
	if err != nil {
		return false, wrap("familiar", err)
	}
	return n == 1, nil
}

func (s *Store) seenKey(account string) string {
	return s.p + "seen:" + hex.EncodeToString([]byte(account))
}

func checkFamiliarKeys(account, source string) error {
	if account == "" || source == "" || len(account) > 64 || len(source) > 64 {
		return errors.New("redis: familiar sources: key empty or longer than 64 bytes")
	}
	return nil
}
