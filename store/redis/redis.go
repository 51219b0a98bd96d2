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
// Psecret:NAME (a string). A family is one hash, P{fam:ID}, whatever the
// number of its rotations: its fields, the current token's hash (tok), the
// previous one's (prev) and when the current one became current (rotated).
// Older tokens are not kept: the server reads the family ID and generation
// from the token it presents. The family ID is the key's hash tag, so
// the family's key has the slot of its ID. The family indexes Pfams,
// Pcfams:CLIENT and Psfams:SUBJECT (sets of family IDs) serve listing and
// revocation by filter; the deny-list is Pdeny:JTI, indexed by the sorted
// set Pdenyidx scored by expiry. Times are stored in microseconds. The
// state the instances share besides the records (shared.go) is Pfail:HEX,
// the throttle's failure counts under opaque keys, and Please:NAME, the
// leases. The authorization code flow's codes, sessions and consents, and
// the index of a session's families (Pxfams:SID), are described in
// authorization.go.
//
// # Atomicity and the rule of rotation
//
// Rotate decides in Go, with store.Decide; no Lua script repeats the
// rule. It reads the family hash and the server's TIME in one round trip
// (a read-only script), decides, and writes store.After's result with a
// compare-and-set script that changes the hash only if its generation,
// current token hash and revocation are still those it read. A concurrent
// change fails the compare-and-set; Rotate then reads and decides again, a
// bounded number of times (then an error wrapping store.ErrConflict and
// store.ErrUnavailable). So of any number of concurrent Rotates from any
// number of servers exactly one rotates, and the rule is written once for
// every backend. CreateFamily,
// the deletes that revoke, RevokeFamilies, DeleteExpired and the deny-list
// are each one Lua script; RewriteSecrets is one MULTI/EXEC under WATCH of
// every key it rewrites (a concurrent change makes it fail with
// store.ErrConflict, changing nothing).
//
// # Clocks
//
// Several servers with skewed clocks share one Redis, so Rotate judges
// grace and expiry on the Redis server's TIME, read with the family, and
// CreateFamily moves the family's times onto it (store.Family.Rebase).
// Options.CallerClock, for tests, uses RotateRequest.Now instead and
// stores families as given.
//
// # Expiry
//
// A family's key carries a PEXPIREAT at the family's absolute expiry plus
// Options.ExpiryMargin (set at its creation; the expiry never moves), so Redis
// drops ended families by itself and no sweeper is needed for them;
// deny-list entries expire at the token's exp. DeleteExpired still deletes
// what ended before the time it is given (revoked families above all, and
// families and deny-list entries whose times the caller judges ended); it
// walks every family in one script, O(families + their index entries),
// and removes the IDs of families Redis has dropped from Pfams and from
// the Pcfams and Psfams sets of the live families. The set of a client or
// subject with no live family left expires with its last family (each
// set's PEXPIREAT is the latest of its families'), so nothing stays.
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
// # Deadlines
//
// Every call ends when its context does, on a pooled connection or a new
// one alike (Open sets go-redis's ContextTimeoutEnabled, without which a
// server that holds its bytes keeps a call for ReadTimeout, once per
// retry), with an error wrapping store.ErrUnavailable if the context's
// deadline passed (store.WithTimeout sets one). A script Redis has begun
// runs to its end all the same.
//
// # Redis Cluster
//
// Open connects to one server (redis:// or rediss://, as go-redis's
// ParseURL reads them): a standalone Redis, or a primary with replicas.
// Which operations could run on a Redis Cluster as they are written:
//
//   - Single-slot, Cluster-safe: Rotate (both of its scripts name only
//     P{fam:ID}, and the TIME it judges on is that slot's primary's),
//     GetFamily, RevokeFamily, and every single-record read or
//     compare-and-set: GetClient, GetUser, UpdatePasswordHash, RetireKey,
//     RevokeKey, AccessTokenRevoked.
//   - Cross-slot: CreateFamily (the family and its three index entries in
//     one script), ListFamilies, RevokeFamilies, DeleteClient, DeleteUser,
//     DeleteExpired, CreateClient, CreateUser, CreateKey, CreateKeyIfNone
//     (a record and its listing set in one script), ListClients,
//     ListUsers, ListKeys (one pipeline over many slots), Secret and
//     RewriteSecrets (MULTI/EXEC over many slots), RevokeAccessToken (the
//     entry and Pdenyidx). On a Cluster these scripts and transactions fail
//     with CROSSSLOT (the scripts that build family keys from the prefix
//     would even touch keys they do not declare), unless every key shared
//     one hash tag, which puts the whole store on one node.
//
// To make them Cluster-safe without one hash tag, each would be split into
// single-slot steps in a documented order, giving up cross-family
// atomicity: CreateFamily adds the index entries first, then creates the
// family (a listing skips an entry whose family does not exist, and
// DeleteExpired removes it); the revoking deletes delete the record first,
// then revoke each listed family with RevokeFamily's one-slot script (a
// crash between leaves families that a retried delete, or RevokeFamilies,
// revokes); the listing sets, the key index and the secrets would share
// one tag of their own ({P}) so that the record scripts and RewriteSecrets
// stay atomic. Rotate, the one hot path, needs no change.
//
// # Upgrading
//
// This layout replaced, before any release, one that kept a key per
// refresh token. A family written in that layout has no current token's
// hash: its tokens are refused (invalid_grant) and its user logs in
// again; its keys expire with it. Clients, users, keys and secrets carry
// over unchanged.
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
	// CallerClock is for tests: the caller's clock is the store's. Rotate
	// judges grace and expiry on RotateRequest.Now instead of the Redis
	// server's TIME, and CreateFamily stores the family's times as given
	// instead of rebasing them on TIME. The conformance suite needs it for
	// its fixed times; a server sharing Redis with other instances must
	// leave it false.
	CallerClock bool
	// RequireSchema makes Open write nothing: a prefix without the schema
	// key (SchemaKey, which Open writes otherwise) is an error wrapping
	// store.ErrNoSchema. The admin commands open stores so.
	RequireSchema bool
}

// SchemaVersion is the value of the schema key (prefix + SchemaKey) that
// Open writes on a prefix: Redis has no tables, but the key tells a store
// that serve or `tokend migrate` set up from an empty or mistyped prefix.
const SchemaVersion = 1

// SchemaKey follows the prefix in the key of the schema version.
const SchemaKey = "schema"

// Store is a store.Store on Redis. It is safe for concurrent use, and any
// number of Stores, in any number of processes, may share one prefix.
type Store struct {
	rdb        *goredis.Client
	p          string
	margin     time.Duration
	callerClk  bool
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
	s := &Store{p: opts.Prefix, margin: opts.ExpiryMargin, callerClk: opts.CallerClock}
	if s.p == "" {
		s.p = DefaultPrefix
	}
	if strings.ContainsAny(s.p, "{}") {
		return nil, fmt.Errorf("redis: prefix %q contains a brace", s.p)
	}
	if s.margin <= 0 {
		s.margin = DefaultExpiryMargin
	}
	// Without it, go-redis ignores a context's deadline on the socket
	// and waits ReadTimeout, MaxRetries times over, for a server that
	// holds its bytes: a call must end when its context does.
	ro.ContextTimeoutEnabled = true
	s.rdb = goredis.NewClient(ro)
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		_ = s.rdb.Close()
		return nil, wrap("open", err)
	}
	if err := s.schema(ctx, opts.RequireSchema); err != nil {
		_ = s.rdb.Close()
		return nil, err
	}
	s.durability = readDurability(ctx, s.rdb)
	if w := s.durability.Warning(); w != "" && opts.Logger != nil {
		opts.Logger.Warn("redis: persistence settings can lose rotations on a crash",
			"appendonly", s.durability.AppendOnly, "appendfsync", s.durability.AppendFsync, "warning", w)
	}
	return s, nil
}

// schema checks the schema key and, unless check, writes it if it is
// missing; a newer version is refused.
func (s *Store) schema(ctx context.Context, check bool) error {
	key := s.p + SchemaKey
	v, err := s.rdb.Get(ctx, key).Int()
	switch {
	case errors.Is(err, goredis.Nil) && check:
		return fmt.Errorf("redis: %w: no key %s", store.ErrNoSchema, key)
	case errors.Is(err, goredis.Nil):
		if err := s.rdb.SetNX(ctx, key, SchemaVersion, 0).Err(); err != nil {
			return wrap("open", err)
		}
		return nil
	case err != nil:
		return wrap("open", err)
	case v > SchemaVersion:
		return fmt.Errorf("redis: the prefix has schema version %d, newer than this build's %d", v, SchemaVersion)
	}
	return nil
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

// Key names.
func (s *Store) clientKey(id string) string   { return s.p + "client:" + id }
func (s *Store) userKey(name string) string   { return s.p + "user:" + name }
func (s *Store) keyKey(kid string) string     { return s.p + "key:" + kid }
func (s *Store) secretKey(name string) string { return s.p + "secret:" + name }
func (s *Store) famKey(id string) string      { return s.p + "{fam:" + id + "}" }
