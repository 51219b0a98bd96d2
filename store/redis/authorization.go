package redis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
)

// The records of the authorization code flow. An authorization code is
// the hash Pcode:HEX (HEX its hash in hex), listed by its client in the
// set Pccodes:CLIENT and by expiry in the sorted set Pcodeidx; a session
// is Psess:ID, listed by its user in Pssess:SUBJECT, by expiry in
// Psessidx and, once ended, by its end in Psessend; the consents of a
// user are the fields (client IDs) of the hash Pconsents:SUBJECT, the
// users consenting to a client the set Pcconsents:CLIENT; the families
// of a session are the set Pxfams:SID. Codes and sessions expire
// Options.ExpiryMargin after their ExpiresAt, as families do, so Redis
// drops them by itself; DeleteExpired drops them earlier, by the
// caller's clock.

// createIndexedScript stores a hash that expires (a code or a session) and
// lists it in a set and a sorted set.
//
// KEYS: the hash, the set, the sorted set. ARGV: member name, PEXPIREAT
// (ms, "" for none), score (the expiry in µs), then field/value pairs.
// Returns 0 if the hash exists, 1 if stored. The set expires with the
// last of its members, as a family index does.
var createIndexedScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] == '' then redis.call('PERSIST', KEYS[2])
else
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
  if redis.call('PTTL', KEYS[2]) == -1 and redis.call('SCARD', KEYS[2]) == 1 then redis.call('PEXPIREAT', KEYS[2], ARGV[2])
  else redis.call('PEXPIREAT', KEYS[2], ARGV[2], 'GT') end
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
`)

// redeemScript is RedeemAuthorizationCode's compare-and-set: it marks the
// code redeemed and creates the family, only if the code is still
// unredeemed and its session (if it has one) is stored and not ended. It
// decides nothing else: store.AuthorizationCode.Redeem did, in Go.
//
// KEYS: the code, its session, then the family's keys as
// createFamilyScript takes them. ARGV: family ID, the family's PEXPIREAT,
// redeemed at (µs), then the family's field/value pairs. Returns 1 if
// written, 0 if the code was redeemed meanwhile, -1 if the family exists,
// -2 if the code is gone, -3 if its session has ended or is gone.
var redeemScript = goredis.NewScript(luaCreateFamily + `
local r = redis.call('HMGET', KEYS[1], 'client', 'redeemed', 'sid')
if not r[1] then return -2 end
if r[2] and r[2] ~= '' then return 0 end
if r[3] and r[3] ~= '' then
  local e = redis.call('HMGET', KEYS[2], 'id', 'ended')
  if not e[1] or (e[2] and e[2] ~= '') then return -3 end
end
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
redis.call('HSET', KEYS[1], 'redeemed', ARGV[3], 'fam', ARGV[1])
local fk = {}
for j = 3, #KEYS do fk[#fk + 1] = KEYS[j] end
createFamily(fk, ARGV[1], ARGV[2], 4)
return 1
`)

// endSessionScript sets a session's end unless it has one. KEYS: the
// session, Psessend. ARGV: session ID, at (µs). Returns 0 for an unknown
// session.
var endSessionScript = goredis.NewScript(`
local e = redis.call('HMGET', KEYS[1], 'id', 'ended')
if not e[1] then return 0 end
if not e[2] or e[2] == '' then
  redis.call('HSET', KEYS[1], 'ended', ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
return 1
`)

// putConsentScript stores a consent and lists its subject under its
// client. KEYS: the subject's consents, the client's subjects. ARGV:
// client ID, the consent as stored, subject.
var putConsentScript = goredis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1
`)

func (s *Store) codeKey(hash []byte) string { return s.p + "code:" + hex.EncodeToString(hash) }
func (s *Store) sessKey(id string) string   { return s.p + "sess:" + id }

// score is the sorted-set score of an expiry: µs since the epoch.
func score(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

func codeFields(c store.AuthorizationCode) []any {
	return []any{"hash", c.Hash, "client", c.ClientID, "redirect", c.RedirectURI, "challenge", c.CodeChallenge, "subject", c.Subject,
		"scope", c.Scope, "nonce", c.Nonce, "res", jsonStrs(c.Resources), "sid", c.SessionID, "auth", enc(c.AuthTime),
		"created", enc(c.CreatedAt), "exp", enc(c.ExpiresAt), "redeemed", enc(c.RedeemedAt), "fam", c.FamilyID}
}

func codeOf(m map[string]string) store.AuthorizationCode {
	return store.AuthorizationCode{Hash: bytesOf(m["hash"]), ClientID: m["client"], RedirectURI: m["redirect"], CodeChallenge: m["challenge"],
		Subject: m["subject"], Scope: m["scope"], Nonce: m["nonce"], Resources: strs(m["res"]), SessionID: m["sid"],
		AuthTime: dec(m["auth"]), CreatedAt: dec(m["created"]), ExpiresAt: dec(m["exp"]), RedeemedAt: dec(m["redeemed"]), FamilyID: m["fam"]}
}

// CreateAuthorizationCode implements store.Store: it reads the Redis
// server's TIME (unless Options.CallerClock), rebases c on it, and stores
// it with its index entries in one script.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c store.AuthorizationCode) error {
	if err := store.CheckAuthorizationCode(c); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	key := s.codeKey(c.Hash)
	if !s.callerClk && !c.CreatedAt.IsZero() {
		_, now, err := s.readFamily(ctx, key)
		if err != nil {
			return wrap("create authorization code", err)
		}
		c = c.Rebase(now)
	}
	argv := append([]any{hex.EncodeToString(c.Hash), s.pxat(c.ExpiresAt), score(c.ExpiresAt)}, codeFields(c)...)
	n, err := createIndexedScript.Run(ctx, s.rdb, []string{key, s.p + "ccodes:" + c.ClientID, s.p + "codeidx"}, argv...).Int()
	if err != nil {
		return wrap("create authorization code", err)
	}
	if n == 0 {
		return fmt.Errorf("redis: authorization code: %w", store.ErrExists)
	}
	return nil
}

// GetAuthorizationCode implements store.Store.
func (s *Store) GetAuthorizationCode(ctx context.Context, hash []byte) (store.AuthorizationCode, error) {
	m, err := s.rdb.HGetAll(ctx, s.codeKey(hash)).Result()
	if err != nil {
		return store.AuthorizationCode{}, wrap("get authorization code", err)
	}
	if len(m) == 0 {
		return store.AuthorizationCode{}, fmt.Errorf("redis: authorization code: %w", store.ErrNotFound)
	}
	return codeOf(m), nil
}

// RedeemAuthorizationCode implements store.Store as
// store.CompareAndRedeem: it reads the code with the server's TIME
// (f.CreatedAt with Options.CallerClock), decides, and writes the
// redemption and the family (rebased on that TIME) with redeemScript,
// which writes only if the code is still unredeemed; a replay revokes the
// first redemption's family with revokeFamilyScript (a redeemed code
// never changes again).
func (s *Store) RedeemAuthorizationCode(ctx context.Context, hash []byte, f store.Family) (store.AuthorizationCode, error) {
	if err := store.CheckFamily(f); err != nil {
		return store.AuthorizationCode{}, fmt.Errorf("redis: %w", err)
	}
	key := s.codeKey(hash)
	return store.CompareAndRedeem(ctx, f,
		func(ctx context.Context) (store.AuthorizationCode, time.Time, error) {
			m, now, err := s.readFamily(ctx, key)
			switch {
			case err != nil:
				return store.AuthorizationCode{}, time.Time{}, wrap("redeem authorization code", err)
			case len(m) == 0:
				return store.AuthorizationCode{}, time.Time{}, fmt.Errorf("redis: authorization code: %w", store.ErrNotFound)
			case s.callerClk:
				now = f.CreatedAt
			}
			return codeOf(m), now, nil
		},
		func(ctx context.Context, c, next store.AuthorizationCode, redeemed bool, now time.Time) (bool, error) {
			if !redeemed {
				err := revokeFamilyScript.Run(ctx, s.rdb, []string{s.famKey(c.FamilyID)}, enc(now), store.ReasonCodeReplay).Err()
				return err == nil, wrap("redeem authorization code", err)
			}
			g := f
			if !s.callerClk {
				g = f.Rebase(now)
			}
			argv := append([]any{g.ID, s.pxat(g.ExpiresAt), enc(next.RedeemedAt)}, familyFields(g)...)
			n, err := redeemScript.Run(ctx, s.rdb, append([]string{key, s.sessKey(c.SessionID)}, s.familyKeys(g)...), argv...).Int()
			switch {
			case err != nil:
				return false, wrap("redeem authorization code", err)
			case n == -1:
				return false, fmt.Errorf("redis: family %q: %w", g.ID, store.ErrExists)
			case n == -2:
				return false, fmt.Errorf("redis: authorization code: %w", store.ErrNotFound)
			case n == -3:
				return false, fmt.Errorf("redis: authorization code: %w", store.ErrSessionEnded)
			}
			return n == 1, nil
		})
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if err := store.CheckSession(sess); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	argv := []any{sess.ID, s.pxat(sess.ExpiresAt), score(sess.ExpiresAt), "id", sess.ID, "hash", sess.Hash, "subject", sess.Subject,
		"auth", enc(sess.AuthTime), "created", enc(sess.CreatedAt), "exp", enc(sess.ExpiresAt), "ended", enc(sess.EndedAt)}
	keys := []string{s.sessKey(sess.ID), s.p + "ssess:" + sess.Subject, s.p + "sessidx"}
	n, err := createIndexedScript.Run(ctx, s.rdb, keys, argv...).Int()
	if err != nil {
		return wrap("create session", err)
	}
	if n == 0 {
		return fmt.Errorf("redis: session %q: %w", sess.ID, store.ErrExists)
	}
	if !sess.EndedAt.IsZero() {
		if err := s.rdb.ZAdd(ctx, s.p+"sessend", goredis.Z{Score: float64(sess.EndedAt.UnixMicro()), Member: sess.ID}).Err(); err != nil {
			return wrap("create session", err)
		}
	}
	return nil
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	m, err := s.rdb.HGetAll(ctx, s.sessKey(id)).Result()
	if err != nil {
		return store.Session{}, wrap("get session", err)
	}
	if len(m) == 0 {
		return store.Session{}, fmt.Errorf("redis: session %q: %w", id, store.ErrNotFound)
	}
	return store.Session{ID: m["id"], Hash: bytesOf(m["hash"]), Subject: m["subject"], AuthTime: dec(m["auth"]),
		CreatedAt: dec(m["created"]), ExpiresAt: dec(m["exp"]), EndedAt: dec(m["ended"])}, nil
}

// EndSession implements store.Store.
func (s *Store) EndSession(ctx context.Context, id string, at time.Time) error {
	n, err := endSessionScript.Run(ctx, s.rdb, []string{s.sessKey(id), s.p + "sessend"}, id, score(at)).Int()
	if err != nil {
		return wrap("end session", err)
	}
	if n == 0 {
		return fmt.Errorf("redis: session %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// storedConsent is a consent's value in Pconsents:SUBJECT.
type storedConsent struct {
	Scopes  []string `json:"scopes"`
	Granted string   `json:"granted"`
}

// PutConsent implements store.Store.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	if err := store.CheckConsent(c); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	v, err := json.Marshal(storedConsent{Scopes: c.Scopes, Granted: enc(c.GrantedAt)})
	if err != nil {
		return fmt.Errorf("redis: consent: %w", err)
	}
	err = putConsentScript.Run(ctx, s.rdb, []string{s.p + "consents:" + c.Subject, s.p + "cconsents:" + c.ClientID}, c.ClientID, v, c.Subject).Err()
	return wrap("put consent", err)
}

// GetConsent implements store.Store.
func (s *Store) GetConsent(ctx context.Context, subject, clientID string) (store.Consent, error) {
	v, err := s.rdb.HGet(ctx, s.p+"consents:"+subject, clientID).Result()
	if errors.Is(err, goredis.Nil) {
		return store.Consent{}, fmt.Errorf("redis: consent: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Consent{}, wrap("get consent", err)
	}
	var sc storedConsent
	if err := json.Unmarshal([]byte(v), &sc); err != nil {
		return store.Consent{}, fmt.Errorf("redis: consent: %w", err)
	}
	return store.Consent{Subject: subject, ClientID: clientID, Scopes: sc.Scopes, GrantedAt: dec(sc.Granted)}, nil
}
