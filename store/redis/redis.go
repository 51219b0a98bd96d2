// Package redis is a store.Store on Redis (7.0 or later), through
// go-redis v9: several token servers share one Redis and see each other's
// rotations and revocations at once.
//
//	s, err := redis.Open(ctx, "redis://127.0.0.1:6379/0", &redis.Options{Prefix: "tokend:"})
//
// # Data model
//
// Every key starts with Options.Prefix (P below). Records are hashes:
// Pclient:ID, Puser:NAME, Pkey:KID (ordered by the sorted set Pkeys),
// Psecret:NAME (a string). A family and its refresh tokens live under one
// hash tag derived from the family ID, so that in a Redis Cluster they
// share a slot: the family is P{fam:ID}, its tokens P{fam:ID}:tok:HASH (hex
// of the token hash) and the set of its token hashes P{fam:ID}:toks. A
// presented token finds its family through the index Ptokidx:HASH → ID,
// which cannot share the family's slot (the token does not carry the
// family ID). The family indexes Pfams, Pcfams:CLIENT and Psfams:SUBJECT
// list family IDs; the deny-list is Pdeny:JTI, indexed by the sorted set
// Pdenyidx scored by expiry. The state the instances share besides the
// records (shared.go) is Pfail:HEX, the throttle's failure counts under
// opaque keys, and Please:NAME, the leases.
//
// # Atomicity
//
// Rotate reads Ptokidx:OLD, claims Ptokidx:NEW with SET NX (a hash held by
// another family is ErrExists), then runs one Lua script over the family's
// keys only: the compare-and-set of the token, reuse detection and the
// revocation it causes happen in that script, so of any number of
// concurrent Rotates from any number of servers exactly one rotates. An
// index entry claimed for a rotation that did not happen (refused, or lost
// to a concurrent one) stays: it names a token that does not exist, so it
// finds nothing, and it expires with the family. CreateFamily, the
// deletes that revoke, RevokeFamilies, DeleteExpired and the deny-list are
// each one Lua script; RewriteSecrets is one MULTI/EXEC under WATCH of
// every key it rewrites (a concurrent change makes it fail with
// store.ErrConflict, changing nothing). Times are stored in microseconds.
//
// # Expiry
//
// Every key of a family carries a PEXPIREAT at the family's absolute
// expiry plus Options.ExpiryMargin, so Redis drops ended families by
// itself and no sweeper is needed for them; deny-list entries expire at the
// token's exp. DeleteExpired still deletes what ended before the time it is
// given (revoked families above all, and families and deny-list entries
// whose times the caller judges ended), because that time is the caller's
// clock, not Redis's; it walks every family in one script, O(families).
//
// # Durability
//
// Redis acknowledges a write before it reaches the disk unless told
// otherwise. What a crash of the Redis server (or its machine) can lose:
//
//   - appendonly yes, appendfsync always: nothing acknowledged. Rotations
//     are as durable as in SQLite or PostgreSQL. Slower.
//   - appendonly yes, appendfsync everysec (Redis's default for AOF): up to
//     about one second of writes. A rotation lost this way makes the client's
//     new refresh token unknown (it must log in again) and a lost revocation
//     lets a revoked family live again.
//   - appendonly yes, appendfsync no: whatever the kernel had not flushed,
//     typically up to 30 seconds.
//   - appendonly no: everything since the last RDB snapshot (save), or
//     everything if snapshots are off too.
//
// Open reads both settings (CONFIG GET; a server that disables CONFIG is
// reported as unknown) and Durability says what they mean; with a Logger
// set, Open warns once when they can lose rotations. Replicas do not help
// unless writes wait for them (WAIT), which this store does not do.
//
// # Redis Cluster
//
// Open connects to one server (redis:// or rediss://, as go-redis's
// ParseURL reads them). Rotate and GetRefreshToken are written for a
// cluster (one slot per family plus the single-key index). The scripts that
// list, revoke or delete across families (DeleteClient, DeleteUser,
// RevokeFamilies, DeleteExpired, CreateFamily's index entries) touch keys of
// many slots and so need a single server, or a primary with replicas; a
// cluster would need them split per slot, giving up their atomicity.
package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "tokend:"

// DefaultExpiryMargin is the time a family's keys outlive its absolute
// expiry when Options.ExpiryMargin is zero.
const DefaultExpiryMargin = 24 * time.Hour

// Options configure a Store. A nil *Options means all defaults.
type Options struct {
	// Prefix starts every key the store writes; "" means DefaultPrefix.
	// It must not contain '{' or '}', which would change the hash tags.
	Prefix string
	// ExpiryMargin is how long after its absolute expiry a family's keys
	// are kept (for audits and ListFamilies) before Redis drops them; zero
	// means DefaultExpiryMargin.
	ExpiryMargin time.Duration
	// Logger, if set, receives one warning at Open when the server's
	// persistence settings can lose rotations on a crash. Nil: nothing is
	// logged.
	Logger *slog.Logger
}

// Store is a store.Store on Redis. It is safe for concurrent use, and any
// number of Stores, in any number of processes, may share one prefix.
type Store struct {
	rdb        *goredis.Client
	p          string
	margin     time.Duration
	durability Durability
}

var _ store.Store = (*Store)(nil)

// Open connects to the Redis server at url (redis://[user:password@]host:port/db
// or rediss:// for TLS, as go-redis ParseURL reads them), checks that it
// answers, and reads its persistence settings. A server that cannot be
// reached is an error wrapping store.ErrUnavailable.
func Open(ctx context.Context, url string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	ro, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	s := &Store{p: opts.Prefix, margin: opts.ExpiryMargin}
	if s.p == "" {
		s.p = DefaultPrefix
	}
	if strings.ContainsAny(s.p, "{}") {
		return nil, fmt.Errorf("redis: prefix %q contains a brace", s.p)
	}
	if s.margin <= 0 {
		s.margin = DefaultExpiryMargin
	}
	s.rdb = goredis.NewClient(ro)
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		_ = s.rdb.Close()
		return nil, wrap("open", err)
	}
	s.durability = readDurability(ctx, s.rdb)
	if w := s.durability.Warning(); w != "" && opts.Logger != nil {
		opts.Logger.Warn("redis: persistence settings can lose rotations on a crash",
			"appendonly", s.durability.AppendOnly, "appendfsync", s.durability.AppendFsync, "warning", w)
	}
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.rdb.Close() }

// Ping implements store.Store: it writes a heartbeat key (Pheartbeat, the
// time in µs, expiring after a minute), so a read-only replica or a server
// refusing writes is unavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Set(ctx, s.p+"heartbeat", time.Now().UnixMicro(), time.Minute).Err(); err != nil {
		return wrap("ping", err)
	}
	return nil
}

// wrap turns a Redis error into the store's: a connection error, a
// timeout or a server that is loading, read-only or without a cluster
// majority wraps store.ErrUnavailable. op names the operation; errors never
// carry a token.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	var ne net.Error
	unavailable := errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, goredis.ErrClosed) || errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, context.DeadlineExceeded)
	for _, prefix := range []string{"LOADING", "READONLY", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "MISCONF"} {
		unavailable = unavailable || goredis.HasErrorPrefix(err, prefix)
	}
	if unavailable {
		return fmt.Errorf("redis: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

// Key names. hex is the hex of a token hash.
func (s *Store) clientKey(id string) string   { return s.p + "client:" + id }
func (s *Store) userKey(name string) string   { return s.p + "user:" + name }
func (s *Store) keyKey(kid string) string     { return s.p + "key:" + kid }
func (s *Store) secretKey(name string) string { return s.p + "secret:" + name }
func (s *Store) famKey(id string) string      { return s.p + "{fam:" + id + "}" }
func (s *Store) tokKey(id, hex string) string { return s.famKey(id) + ":tok:" + hex }
func (s *Store) toksKey(id string) string     { return s.famKey(id) + ":toks" }
func (s *Store) idxKey(hex string) string     { return s.p + "tokidx:" + hex }
