package redis

import goredis "github.com/redis/go-redis/v9"

// Times are stored as microseconds since the Unix epoch, "" for the zero
// time: Lua numbers are doubles, exact to 2^53 µs (year 2255).

// readFamilyScript reads a family hash and the server's clock in one
// round trip, on the family's slot. KEYS: family hash. Returns {TIME
// (seconds, microseconds), HGETALL family}.
var readFamilyScript = goredis.NewScript(`
return {redis.call('TIME'), redis.call('HGETALL', KEYS[1])}
`)

// casFamilyScript is Rotate's compare-and-set: it writes field/value
// pairs to a family hash only if the family's generation, current token
// hash and revocation are still those Rotate read. It decides nothing:
// store.Decide did, in Go. The key keeps the expiry CreateFamily gave it
// (a family's absolute expiry never moves).
//
// KEYS: family hash. ARGV: generation, token hash, revoked ("" for not),
// then field/value pairs. Returns 1 if written, 0 if the family changed
// (or is gone).
var casFamilyScript = goredis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'gen', 'tok', 'revoked')
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] or (f[3] or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
return 1
`)

// createFamilyScript stores a family and its entries in the family
// indexes.
//
// KEYS: family hash, all families, the client's families, the subject's
// families and, for a family of a session, the session's families. ARGV:
// family ID, PEXPIREAT (ms, "" for none), then the family's field/value
// pairs. Returns 0 if the family exists, 1 if stored.
//
// The client's and the subject's index sets expire with the last of their
// families (PEXPIREAT … GT, or no expiry while one has none), so that the
// index of a client or subject that is gone leaves nothing behind.
var createFamilyScript = goredis.NewScript(luaCreateFamily + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
createFamily(KEYS, ARGV[1], ARGV[2], 3)
return 1
`)

// luaCreateFamily defines createFamily(keys, id, pxat, first): it stores
// the family whose field/value pairs are ARGV[first], … at keys[1] and its
// entries in the index sets keys[2] (all families), keys[3] (the
// client's), keys[4] (the subject's) and, if given, keys[5] (the
// session's), each of the last expiring with the last of its families.
const luaCreateFamily = `
local function createFamily(keys, id, pxat, first)
  redis.call('HSET', keys[1], unpack(ARGV, first))
  if pxat ~= '' then redis.call('PEXPIREAT', keys[1], pxat) end
  for j = 2, #keys do redis.call('SADD', keys[j], id) end
  for j = 3, #keys do
    if pxat == '' then redis.call('PERSIST', keys[j])
    elseif redis.call('PTTL', keys[j]) == -1 and redis.call('SCARD', keys[j]) == 1 then redis.call('PEXPIREAT', keys[j], pxat)
    else redis.call('PEXPIREAT', keys[j], pxat, 'GT') end
  end
end
`

// revokeScript revokes the unrevoked families listed in a set that match a
// filter and returns how many it revoked; with two more keys it first
// deletes a record (a client or a user) and its entry in the listing set,
// returning -1 if the record does not exist. Family keys are built from the
// prefix, so the script needs a single Redis server (see the package doc).
//
// Deleting a user (ARGV[9] "user") also ends the user's sessions and
// deletes the user's consents; deleting a client ("client"), the
// client's consents and unredeemed authorization codes.
//
// KEYS: the family set; optionally the record and its listing set, then
// for a user its sessions set and consents hash, for a client the set of
// the subjects consenting to it and the set of its codes. ARGV: key
// prefix, client ID, subject, active-at ("" for any), at, reason, the
// record's name, session ID ("" for any), "user", "client" or "".
var revokeScript = goredis.NewScript(`
local function num(s) if s == false or s == nil or s == '' then return nil end return tonumber(s) end
if #KEYS >= 3 then
  if redis.call('DEL', KEYS[2]) == 0 then return -1 end
  redis.call('SREM', KEYS[3], ARGV[7])
end
if ARGV[9] == 'user' then
  -- KEYS[4]: the user's sessions, KEYS[5]: the user's consents.
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    local sess = ARGV[1] .. 'sess:' .. id
    local e = redis.call('HMGET', sess, 'id', 'ended')
    if e[1] and (not e[2] or e[2] == '') then
      redis.call('HSET', sess, 'ended', ARGV[5])
      redis.call('ZADD', ARGV[1] .. 'sessend', ARGV[5], id)
    end
  end
  for _, client in ipairs(redis.call('HKEYS', KEYS[5])) do redis.call('SREM', ARGV[1] .. 'cconsents:' .. client, ARGV[7]) end
  redis.call('DEL', KEYS[5])
elseif ARGV[9] == 'client' then
  -- KEYS[4]: the subjects consenting to the client, KEYS[5]: its codes.
  for _, subject in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('HDEL', ARGV[1] .. 'consents:' .. subject, ARGV[7]) end
  redis.call('DEL', KEYS[4])
  for _, h in ipairs(redis.call('SMEMBERS', KEYS[5])) do
    local code = ARGV[1] .. 'code:' .. h
    local r = redis.call('HMGET', code, 'client', 'redeemed')
    if not r[1] or not r[2] or r[2] == '' then
      redis.call('DEL', code)
      redis.call('ZREM', ARGV[1] .. 'codeidx', h)
      redis.call('SREM', KEYS[5], h)
    end
  end
end
local active = num(ARGV[4])
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fam = ARGV[1] .. '{fam:' .. id .. '}'
  local f = redis.call('HMGET', fam, 'id', 'client', 'subject', 'revoked', 'idle', 'exp', 'sid')
  if not f[1] then
    redis.call('SREM', KEYS[1], id)
  elseif (ARGV[2] == '' or f[2] == ARGV[2]) and (ARGV[3] == '' or f[3] == ARGV[3]) and (ARGV[8] == '' or f[7] == ARGV[8]) and not num(f[4]) then
    local idle, exp = num(f[5]), num(f[6])
    if not active or (idle and exp and active < idle and active < exp) then
      redis.call('HSET', fam, 'revoked', ARGV[5], 'reason', ARGV[6])
      n = n + 1
    end
  end
end
return n
`)

// revokeFamilyScript revokes one family unless it is revoked already.
// KEYS: family hash. ARGV: at, reason. Returns 0 if the family does not
// exist, 1 otherwise.
var revokeFamilyScript = goredis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'id', 'revoked')
if not f[1] then return 0 end
if not f[2] or f[2] == '' then redis.call('HSET', KEYS[1], 'revoked', ARGV[1], 'reason', ARGV[2]) end
return 1
`)

// deleteExpiredScript deletes the families that ended before a time and
// the deny-list entries that expired before it; returns how many families
// it deleted.
//
// KEYS: all families, the deny-list index. ARGV: key prefix, before.
var deleteExpiredScript = goredis.NewScript(`
local function num(s) if s == false or s == nil or s == '' then return nil end return tonumber(s) end
local p, before = ARGV[1], tonumber(ARGV[2])
local n = 0
local sets = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fam = p .. '{fam:' .. id .. '}'
  local f = redis.call('HMGET', fam, 'id', 'client', 'subject', 'revoked', 'idle', 'exp', 'sid')
  local revoked, idle, exp = num(f[4]), num(f[5]), num(f[6])
  local ended = not f[1] or (revoked and revoked < before) or not idle or idle <= before or not exp or exp <= before
  if ended then
    redis.call('DEL', fam)
    redis.call('SREM', KEYS[1], id)
    if f[1] then
      redis.call('SREM', p .. 'cfams:' .. f[2], id)
      redis.call('SREM', p .. 'sfams:' .. f[3], id)
      if f[7] and f[7] ~= '' then redis.call('SREM', p .. 'xfams:' .. f[7], id) end
      n = n + 1
    end
  else
    sets[p .. 'cfams:' .. f[2]] = true
    sets[p .. 'sfams:' .. f[3]] = true
    if f[7] and f[7] ~= '' then sets[p .. 'xfams:' .. f[7]] = true end
  end
end
-- A family Redis expired by its TTL left its ID in its client's and
-- subject's sets; the sets still in use are those of the live families.
for set in pairs(sets) do
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    if redis.call('EXISTS', p .. '{fam:' .. id .. '}') == 0 then redis.call('SREM', set, id) end
  end
end
for _, jti in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])) do
  redis.call('DEL', p .. 'deny:' .. jti)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])
-- Authorization codes expired by before, and sessions expired by it or
-- ended before it.
for _, h in ipairs(redis.call('ZRANGEBYSCORE', p .. 'codeidx', '-inf', ARGV[2])) do
  local code = p .. 'code:' .. h
  local c = redis.call('HGET', code, 'client')
  if c then redis.call('SREM', p .. 'ccodes:' .. c, h) end
  redis.call('DEL', code)
end
redis.call('ZREMRANGEBYSCORE', p .. 'codeidx', '-inf', ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', p .. 'sessidx', '-inf', ARGV[2])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'sessend', '-inf', '(' .. ARGV[2])) do gone[#gone + 1] = id end
for _, id in ipairs(gone) do
  local sess = p .. 'sess:' .. id
  local u = redis.call('HGET', sess, 'subject')
  if u then redis.call('SREM', p .. 'ssess:' .. u, id) end
  redis.call('DEL', sess)
  redis.call('ZREM', p .. 'sessidx', id)
  redis.call('ZREM', p .. 'sessend', id)
end
return n
`)

// denyScript puts a jti on the deny-list, keeping the later expiry.
// KEYS: the entry, the deny-list index. ARGV: jti, expiry (µs), PEXPIREAT (ms).
var denyScript = goredis.NewScript(`
local old = redis.call('GET', KEYS[1])
if old and tonumber(old) >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`)

// casPasswordScript is UpdatePasswordHash's compare-and-set.
// KEYS: the user hash. ARGV: old hash, new hash. Returns -1 for an unknown
// user, 0 on a conflict, 1 on success.
var casPasswordScript = goredis.NewScript(`
local h = redis.call('HGET', KEYS[1], 'hash')
if not h then return -1 end
if h ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'hash', ARGV[2])
return 1
`)

// createKeyScript stores a signing key, ordered by creation.
// KEYS: the key hash, the key index, the sequence. ARGV: kid, then
// field/value pairs. Returns 0 if the kid is taken.
var createKeyScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('ZADD', KEYS[2], seq, ARGV[1])
return 1
`)

// createKeyIfNoneScript is createKeyScript, but only if no key of the
// new key's use is active (neither retired nor revoked): it returns the
// kid of the newest active key of that use, ARGV[3] when it created that
// key itself, and nil if the kid is taken. KEYS: the key hash, the key
// index, the sequence. ARGV: key prefix, use, kid, then field/value pairs.
// The hashes of the other keys are named from the prefix, as the index
// lists them; a hash without a use field (stored before keys had uses) is
// of use "".
var createKeyIfNoneScript = goredis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
for i = #ids, 1, -1 do
  local k = redis.call('HMGET', ARGV[1] .. 'key:' .. ids[i], 'alg', 'retired', 'revoked', 'use')
  if k[1] and (not k[2] or k[2] == '') and (not k[3] or k[3] == '') and (k[4] or '') == ARGV[2] then return ids[i] end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], seq, ARGV[3])
return ARGV[3]
`)

// rotateKeyScript is RotateKey's compare-and-set: if the newest active key
// (neither retired nor revoked) of the new key's use is ARGV[3] ("" for
// none), it retires every active key of that use at ARGV[4] and stores the
// new key as createKeyScript does. Returns 1 on success, 0 if another key
// is the newest active one, -1 if the kid is taken. KEYS: the new key's
// hash, the key index, the sequence. ARGV: key prefix, use, prev, retired
// time, kid, then field/value pairs. A hash without a use field is of use
// "".
var rotateKeyScript = goredis.NewScript(`
local newest, active = '', {}
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
for i = #ids, 1, -1 do
  local k = redis.call('HMGET', ARGV[1] .. 'key:' .. ids[i], 'alg', 'retired', 'revoked', 'use')
  if k[1] and (not k[2] or k[2] == '') and (not k[3] or k[3] == '') and (k[4] or '') == ARGV[2] then
    if newest == '' then newest = ids[i] end
    active[#active + 1] = ids[i]
  end
end
if newest ~= ARGV[3] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
for _, id in ipairs(active) do redis.call('HSET', ARGV[1] .. 'key:' .. id, 'retired', ARGV[4]) end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('ZADD', KEYS[2], seq, ARGV[5])
return 1
`)

// retireKeyScript sets a key's retired (and, if revoking, revoked) time if
// unset. KEYS: the key hash. ARGV: at, "1" to revoke. Returns 0 for an
// unknown key.
var retireKeyScript = goredis.NewScript(`
local k = redis.call('HMGET', KEYS[1], 'alg', 'retired', 'revoked')
if not k[1] then return 0 end
if ARGV[2] == '1' then
  if k[3] and k[3] ~= '' then return 1 end
  redis.call('HSET', KEYS[1], 'revoked', ARGV[1])
end
if not k[2] or k[2] == '' then redis.call('HSET', KEYS[1], 'retired', ARGV[1]) end
return 1
`)
