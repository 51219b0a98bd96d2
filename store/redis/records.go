package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
)

// enc writes a time as microseconds since the epoch, "" for the zero time.
func enc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// dec reads what enc wrote.
func dec(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if s == "" || err != nil {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

// pxat is the PEXPIREAT (ms) of a key that lives until t plus margin, ""
// for none when t is zero.
func (s *Store) pxat(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.Add(s.margin).UnixMilli(), 10)
}

func strs(v string) []string {
	var out []string
	_ = json.Unmarshal([]byte(v), &out)
	return out
}

func jsonStrs(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// createRecordScript stores a hash if its key is free and adds its name to
// a listing set. KEYS: the hash, the set. ARGV: name, field/value pairs.
var createRecordScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`)

func (s *Store) createRecord(ctx context.Context, what, name, key, set string, fields ...any) error {
	n, err := createRecordScript.Run(ctx, s.rdb, []string{key, set}, append([]any{name}, fields...)...).Int()
	if err != nil {
		return wrap("create "+what, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: %s %q: %w", what, name, store.ErrExists)
	}
	return nil
}

// getAll reads the hashes at keys in one round trip; a missing hash is an
// empty map.
func (s *Store) getAll(ctx context.Context, op string, keys []string) ([]map[string]string, error) {
	cmds := make([]*goredis.MapStringStringCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HGetAll(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]map[string]string, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// CreateClient implements store.Store.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	if err := store.CheckClient(c); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return s.createRecord(ctx, "client", c.ID, s.clientKey(c.ID), s.p+"clients", clientFields(c)...)
}

// clientFields are c's field/value pairs as stored (read by clientOf).
func clientFields(c store.Client) []any {
	return []any{"id", c.ID, "secret", c.SecretHash, "grants", jsonStrs(c.Grants), "scopes", jsonStrs(c.Scopes),
		"mint", flag(c.Mint), "mintfor", jsonStrs(c.MintFor), "created", enc(c.CreatedAt),
		"origins", jsonStrs(c.Origins), "cookie", flag(c.Cookie), "redirects", jsonStrs(c.RedirectURIs),
		"postlogout", jsonStrs(c.PostLogoutRedirectURIs), "third", flag(c.ThirdParty), "resources", jsonStrs(c.Resources),
		"prevsecret", c.PreviousSecretHash, "prevexpires", enc(c.PreviousSecretExpiresAt)}
}

// UpdateClient implements store.Store: it reads the client under WATCH,
// compares it with prev and writes next in one MULTI/EXEC; a concurrent
// change to the client (an update or a delete) fails it with
// store.ErrConflict.
func (s *Store) UpdateClient(ctx context.Context, prev, next store.Client) error {
	if err := store.CheckUpdate(prev, next); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	key := s.clientKey(prev.ID)
	err := s.rdb.Watch(ctx, func(tx *goredis.Tx) error {
		m, err := tx.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		if len(m) == 0 {
			return fmt.Errorf("redis: client %q: %w", prev.ID, store.ErrNotFound)
		}
		if !clientOf(m).Equal(prev) {
			return fmt.Errorf("redis: client %q: %w", prev.ID, store.ErrConflict)
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HSet(ctx, key, clientFields(next)...)
			return nil
		})
		return err
	}, key)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		return err
	case errors.Is(err, goredis.TxFailedErr):
		return fmt.Errorf("redis: update client %q: %w", prev.ID, store.ErrConflict)
	}
	return wrap("update client", err)
}

// flag is a boolean as stored: "1" or "".
func flag(b bool) string {
	if b {
		return "1"
	}
	return ""
}

func clientOf(m map[string]string) store.Client {
	c := store.Client{ID: m["id"], Grants: strs(m["grants"]), Scopes: strs(m["scopes"]), Mint: m["mint"] == "1",
		MintFor: strs(m["mintfor"]), CreatedAt: dec(m["created"]),
		Origins: strs(m["origins"]), Cookie: m["cookie"] == "1", RedirectURIs: strs(m["redirects"]),
		PostLogoutRedirectURIs: strs(m["postlogout"]), ThirdParty: m["third"] == "1", Resources: strs(m["resources"])}
	if v := m["secret"]; v != "" {
		c.SecretHash = []byte(v)
	}
	if v := m["prevsecret"]; v != "" {
		c.PreviousSecretHash = []byte(v)
		c.PreviousSecretExpiresAt = dec(m["prevexpires"])
	}
	return c
}

// GetClient implements store.Store.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	m, err := s.rdb.HGetAll(ctx, s.clientKey(id)).Result()
	if err != nil {
		return store.Client{}, wrap("get client", err)
	}
	if len(m) == 0 {
		return store.Client{}, fmt.Errorf("redis: client %q: %w", id, store.ErrNotFound)
	}
	return clientOf(m), nil
}

// ListClients implements store.Store.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	ms, err := s.listRecords(ctx, "list clients", s.p+"clients", s.clientKey)
	if err != nil {
		return nil, err
	}
	out := make([]store.Client, 0, len(ms))
	for _, m := range ms {
		out = append(out, clientOf(m))
	}
	slices.SortFunc(out, func(a, b store.Client) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// listRecords reads the hashes named in a set, skipping those deleted
// meanwhile.
func (s *Store) listRecords(ctx context.Context, op, set string, key func(string) string) ([]map[string]string, error) {
	names, err := s.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return nil, wrap(op, err)
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = key(n)
	}
	ms, err := s.getAll(ctx, op, keys)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ms, func(m map[string]string) bool { return len(m) == 0 }), nil
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, at time.Time) (int, error) {
	return s.deleteRevoking(ctx, "client", id, []string{s.p + "cfams:" + id, s.clientKey(id), s.p + "clients", s.p + "cconsents:" + id, s.p + "ccodes:" + id},
		id, "", store.ReasonClientDeleted, at)
}

// DeleteUser implements store.Store.
func (s *Store) DeleteUser(ctx context.Context, name string, at time.Time) (int, error) {
	return s.deleteRevoking(ctx, "user", name, []string{s.p + "sfams:" + name, s.userKey(name), s.p + "users", s.p + "ssess:" + name, s.p + "consents:" + name},
		"", name, store.ReasonUserDeleted, at)
}

// deleteRevoking runs revokeScript for DeleteClient or DeleteUser (what)
// with keys: the families, the record, its listing set, and the two sets
// of what goes with the record.
func (s *Store) deleteRevoking(ctx context.Context, what, name string, keys []string, client, subject, reason string, at time.Time) (int, error) {
	n, err := revokeScript.Run(ctx, s.rdb, keys, s.p, client, subject, "", enc(at), reason, name, "", what).Int()
	if err != nil {
		return 0, wrap("delete "+what, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("redis: %s %q: %w", what, name, store.ErrNotFound)
	}
	return n, nil
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := store.CheckID(u.Name); err != nil {
		return fmt.Errorf("redis: user name: %w", err)
	}
	return s.createRecord(ctx, "user", u.Name, s.userKey(u.Name), s.p+"users",
		"name", u.Name, "hash", u.PasswordHash, "created", enc(u.CreatedAt))
}

func userOf(m map[string]string) store.User {
	return store.User{Name: m["name"], PasswordHash: m["hash"], CreatedAt: dec(m["created"])}
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	m, err := s.rdb.HGetAll(ctx, s.userKey(name)).Result()
	if err != nil {
		return store.User{}, wrap("get user", err)
	}
	if len(m) == 0 {
		return store.User{}, fmt.Errorf("redis: user %q: %w", name, store.ErrNotFound)
	}
	return userOf(m), nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	ms, err := s.listRecords(ctx, "list users", s.p+"users", s.userKey)
	if err != nil {
		return nil, err
	}
	out := make([]store.User, 0, len(ms))
	for _, m := range ms {
		out = append(out, userOf(m))
	}
	slices.SortFunc(out, func(a, b store.User) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// UpdatePasswordHash implements store.Store, as a compare-and-set in Lua.
func (s *Store) UpdatePasswordHash(ctx context.Context, name, oldHash, newHash string) error {
	n, err := casPasswordScript.Run(ctx, s.rdb, []string{s.userKey(name)}, oldHash, newHash).Int()
	switch {
	case err != nil:
		return wrap("update password hash", err)
	case n < 0:
		return fmt.Errorf("redis: user %q: %w", name, store.ErrNotFound)
	case n == 0:
		return fmt.Errorf("redis: user %q: %w", name, store.ErrConflict)
	}
	return nil
}

// CreateKey implements store.Store.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	n, err := createKeyScript.Run(ctx, s.rdb, []string{s.keyKey(k.ID), s.p + "keys", s.p + "keyseq"}, keyFields(k)...).Int()
	if err != nil {
		return wrap("create key", err)
	}
	if n == 0 {
		return fmt.Errorf("redis: key %q: %w", k.ID, store.ErrExists)
	}
	return nil
}

// keyFields is the kid, then the field/value pairs of k's hash.
func keyFields(k store.Key) []any {
	return []any{k.ID, "id", k.ID, "alg", k.Algorithm, "priv", k.Private, "use", k.Use, "created", enc(k.CreatedAt),
		"notbefore", enc(k.NotBefore), "retired", enc(k.RetiredAt), "revoked", enc(k.RevokedAt)}
}

// keyFrom decodes a key's hash. A hash stored before keys had a use has no
// "use" field: its key signs access tokens (Use "").
func keyFrom(m map[string]string) store.Key {
	return store.Key{ID: m["id"], Algorithm: m["alg"], Private: []byte(m["priv"]), Use: m["use"], CreatedAt: dec(m["created"]),
		NotBefore: dec(m["notbefore"]), RetiredAt: dec(m["retired"]), RevokedAt: dec(m["revoked"])}
}

// CreateKeyIfNone implements store.Store: one Lua script looks through the
// key index for an active key of k.Use and creates k only if there is none.
func (s *Store) CreateKeyIfNone(ctx context.Context, k store.Key) (store.Key, error) {
	id, err := createKeyIfNoneScript.Run(ctx, s.rdb, []string{s.keyKey(k.ID), s.p + "keys", s.p + "keyseq"},
		append([]any{s.p, k.Use}, keyFields(k)...)...).Text()
	if errors.Is(err, goredis.Nil) {
		return store.Key{}, fmt.Errorf("redis: key %q: %w", k.ID, store.ErrExists)
	}
	if err != nil {
		return store.Key{}, wrap("create key if none", err)
	}
	if id == k.ID {
		return k, nil
	}
	m, err := s.rdb.HGetAll(ctx, s.keyKey(id)).Result()
	if err != nil {
		return store.Key{}, wrap("create key if none", err)
	}
	if len(m) == 0 { // never deleted, so only if the data was lost meanwhile
		return store.Key{}, fmt.Errorf("redis: active key %q: %w", id, store.ErrNotFound)
	}
	return keyFrom(m), nil
}

// RotateKey implements store.Store: one Lua script checks the newest
// active key of k.Use, retires the active keys of k.Use and stores k.
func (s *Store) RotateKey(ctx context.Context, k store.Key, prev string) error {
	n, err := rotateKeyScript.Run(ctx, s.rdb, []string{s.keyKey(k.ID), s.p + "keys", s.p + "keyseq"},
		append([]any{s.p, k.Use, prev, enc(k.NotBefore)}, keyFields(k)...)...).Int()
	switch {
	case err != nil:
		return wrap("rotate key", err)
	case n == 0:
		return fmt.Errorf("redis: rotate key: the newest active key is not %q: %w", prev, store.ErrConflict)
	case n < 0:
		return fmt.Errorf("redis: key %q: %w", k.ID, store.ErrExists)
	}
	return nil
}

// ListKeys implements store.Store.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	return listIndexed(ctx, s, "list keys", "keys", false, s.keyKey, keyFrom)
}

// listIndexed reads the records whose IDs the sorted set Pindex lists
// (in its order, or sorted by ID), at the keys keyOf gives, and decodes
// each with decode; a record Redis has dropped since it was listed is
// left out.
func listIndexed[T any](ctx context.Context, s *Store, op, index string, byID bool, keyOf func(string) string, decode func(map[string]string) T) ([]T, error) {
	ids, err := s.rdb.ZRange(ctx, s.p+index, 0, -1).Result()
	if err != nil {
		return nil, wrap(op, err)
	}
	if byID {
		slices.Sort(ids)
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = keyOf(id)
	}
	ms, err := s.getAll(ctx, op, keys)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(ms))
	for _, m := range ms {
		if len(m) > 0 {
			out = append(out, decode(m))
		}
	}
	return out, nil
}

// RetireKey implements store.Store.
func (s *Store) RetireKey(ctx context.Context, id string, at time.Time) error {
	return s.retireKey(ctx, "retire key", id, at, "0")
}

// RevokeKey implements store.Store.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	return s.retireKey(ctx, "revoke key", id, at, "1")
}

func (s *Store) retireKey(ctx context.Context, op, id string, at time.Time, revoke string) error {
	n, err := retireKeyScript.Run(ctx, s.rdb, []string{s.keyKey(id)}, enc(at), revoke).Int()
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: key %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// RevokeAccessToken implements store.Store: the entry expires in Redis at
// expiresAt.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if err := store.CheckID(jti); err != nil {
		return fmt.Errorf("redis: jti: %w", err)
	}
	ms := max(expiresAt.UnixMilli(), 1)
	err := denyScript.Run(ctx, s.rdb, []string{s.p + "deny:" + jti, s.p + "denyidx"}, jti, expiresAt.UnixMicro(), ms).Err()
	return wrap("revoke access token", err)
}

// AccessTokenRevoked implements store.Store.
func (s *Store) AccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.p+"deny:"+jti).Result()
	if err != nil {
		return false, wrap("access token revoked", err)
	}
	return n == 1, nil
}

// Secret implements store.Store: SET NX GET and the listing entry in one
// MULTI/EXEC, so the first value stored wins for every caller.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	var get *goredis.Cmd
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Do(ctx, "SET", s.secretKey(name), value, "NX", "GET")
		p.SAdd(ctx, s.p+"secrets", name)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, wrap("secret", err)
	}
	old, err := get.Text()
	if errors.Is(err, goredis.Nil) {
		return append([]byte(nil), value...), nil
	}
	if err != nil {
		return nil, wrap("secret", err)
	}
	return []byte(old), nil
}

// RewriteSecrets implements store.Store: it reads every key and secret
// under WATCH, runs fn on each, and writes the results in one MULTI/EXEC.
// A concurrent change to any of them fails it with store.ErrConflict.
func (s *Store) RewriteSecrets(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, error)) error {
	keysSet, secretsSet := s.p+"keys", s.p+"secrets"
	err := s.rdb.Watch(ctx, func(tx *goredis.Tx) error {
		kids, err := tx.ZRange(ctx, keysSet, 0, -1).Result()
		if err != nil {
			return err
		}
		names, err := tx.SMembers(ctx, secretsSet).Result()
		if err != nil {
			return err
		}
		var watch []string
		for _, k := range kids {
			watch = append(watch, s.keyKey(k))
		}
		for _, n := range names {
			watch = append(watch, s.secretKey(n))
		}
		if len(watch) > 0 {
			if err := tx.Watch(ctx, watch...).Err(); err != nil {
				return err
			}
		}
		type write struct {
			key   string
			value []byte
			isKey bool
		}
		var writes []write
		for _, k := range kids {
			v, err := tx.HGet(ctx, s.keyKey(k), "priv").Bytes()
			if errors.Is(err, goredis.Nil) {
				continue
			} else if err != nil {
				return err
			}
			out, err := fn(store.KindKey, k, v)
			if err != nil {
				return fnError{err}
			}
			writes = append(writes, write{s.keyKey(k), out, true})
		}
		for _, n := range names {
			v, err := tx.Get(ctx, s.secretKey(n)).Bytes()
			if errors.Is(err, goredis.Nil) {
				continue
			} else if err != nil {
				return err
			}
			out, err := fn(store.KindSecret, n, v)
			if err != nil {
				return fnError{err}
			}
			writes = append(writes, write{s.secretKey(n), out, false})
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for _, w := range writes {
				if w.isKey {
					p.HSet(ctx, w.key, "priv", w.value)
				} else {
					p.Set(ctx, w.key, w.value, 0)
				}
			}
			return nil
		})
		return err
	}, keysSet, secretsSet)
	var fe fnError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return fe.err
	case errors.Is(err, goredis.TxFailedErr):
		return fmt.Errorf("redis: rewrite secrets: %w", store.ErrConflict)
	}
	return wrap("rewrite secrets", err)
}

// fnError carries RewriteSecrets' fn error out of the transaction as is.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }
func (e fnError) Unwrap() error { return e.err }
