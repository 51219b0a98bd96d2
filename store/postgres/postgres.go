// Package postgres is a store.Store on PostgreSQL (12 or later), through
// pgx v5 and its connection pool: the store for several token servers that
// share one database.
//
//	s, err := postgres.Open(ctx, "postgres://tokend@db.example/tokend?sslmode=verify-full")
//
// Open applies the schema migrations the database lacks, in one
// transaction under an advisory lock, so that instances starting together
// migrate once. Tables live in the connection's current schema: set it with
// the URL's search_path parameter; Open creates the first schema it names
// if it does not exist. With RequireSchema, Open creates and migrates
// nothing and refuses a database without this build's schema.
//
// A family is one row however often it rotates (its current and previous
// token hashes). Rotate reads the row with the database's clock, decides
// by store.Decide and writes store.After's result with one compare-and-set
// UPDATE on the generation and token hash it read, so concurrent Rotates
// of one token from any number of processes rotate it once. Grace and
// expiry are judged on the database's clock, now(), whatever the clocks of
// the servers (WithCallerClock, for tests, uses the caller's). Errors of a database that is
// down, restarting, out of connections or too slow (SQLSTATE classes 08
// and 53, 57P01–57P03, deadlocks and serialization failures, a failed or
// timed-out connect) wrap store.ErrUnavailable and the driver's error;
// nothing was changed and the caller may retry. So do writes to a
// read-only server (SQLSTATE 25006), a standby that a failover may promote,
// and calls whose context's deadline passes (store.WithTimeout sets one):
// a call ends when its context does, on a pooled connection or while a new
// one connects, and the connection it was using is closed.
//
// Besides the records, the Store keeps what the instances of a fleet
// share (shared.go): the throttle's failure counts (store.FailureCounter)
// and leases (store.Leaser), both on the database's clock.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/tokend/tokend/store"
)

// The schema, one file per version: migrations/N.sql takes a database from
// version N-1 to N. Published files never change.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations lists the schema files in order; the schema version is its
// length.
var migrations = []string{"migrations/1.sql", "migrations/2.sql", "migrations/3.sql", "migrations/4.sql", "migrations/5.sql", "migrations/6.sql", "migrations/7.sql", "migrations/8.sql", "migrations/9.sql"}

// Store is a PostgreSQL store.Store. Open it with Open; it is safe for
// concurrent use, and any number of Stores (in any number of processes)
// may share one database.
type Store struct {
	pool *pgxpool.Pool
	// callerClock: Rotate judges at RotateRequest.Now and CreateFamily
	// stores the times it is given (WithCallerClock).
	callerClock bool
	// raced, if set, runs in Rotate after each read of the family (before
	// its write), with the attempt's number from 0: tests make another
	// writer win there.
	raced func(attempt int)
	// requireSchema: Open checks the schema and changes nothing
	// (RequireSchema).
	requireSchema bool
}

// Option configures Open.
type Option func(*Store)

// WithCallerClock is for tests: the caller's clock is the store's.
// Rotate judges grace and expiry at RotateRequest.Now and writes times
// from it, and CreateFamily stores the family's times as given, as the
// single-host backends do, so that a suite with fixed fake times runs.
// Without it (the default) the database's clock, now(), is the store's:
// the one clock that every server sharing the database agrees on.
func WithCallerClock() Option { return func(s *Store) { s.callerClock = true } }

// RequireSchema makes Open create and migrate nothing: a database (or the
// schema its URL's search_path names first) without the tokend schema is
// an error wrapping store.ErrNoSchema, one with an older schema an error
// wrapping store.ErrSchemaOutdated. The admin commands open stores so.
func RequireSchema() Option { return func(s *Store) { s.requireSchema = true } }

var _ store.Store = (*Store)(nil)

// DefaultConnectTimeout bounds a connection attempt, the startup
// handshake included, when the URL sets no connect_timeout.
const DefaultConnectTimeout = 5 * time.Second

// DefaultMaxConns is the size of the connection pool when the URL sets no
// pool_max_conns (pgxpool's own default is max(4, CPUs)). A rotation
// waits for its commit's WAL flush; concurrent commits share a flush, so
// more connections carry more rotations at once: on 2 cores, 16 clients
// rotate about twice as fast through 16 connections as through 4.
const DefaultMaxConns = 16

// Open connects to the database at url (postgres:// or postgresql://, with
// pgx's parameters, e.g. sslmode, search_path, pool_max_conns, default
// DefaultMaxConns) and brings
// its schema up to date. It fails with an error wrapping
// store.ErrUnavailable when the server cannot be reached, and refuses a
// database whose schema is newer than this build knows.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, errors.New("postgres: the store URL must start with postgres:// or postgresql://")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if u, err := neturl.Parse(url); err == nil && !u.Query().Has("pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A network that drops packets silently must fail a connection
		// in seconds, not when the request's context ends.
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool}
	for _, o := range opts {
		o(s)
	}
	schema := searchSchema(cfg.ConnConfig.RuntimeParams["search_path"])
	if s.requireSchema {
		err = s.checkSchema(ctx, schema)
	} else {
		err = s.createSchema(ctx, schema)
		if err == nil {
			err = s.migrate(ctx)
		}
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// searchSchema returns the first schema a search_path names ("" if none),
// unquoted, skipping "$user".
func searchSchema(path string) string {
	for _, f := range strings.Split(path, ",") {
		f = strings.TrimSpace(f)
		if len(f) >= 2 && f[0] == '"' && f[len(f)-1] == '"' {
			f = strings.ReplaceAll(f[1:len(f)-1], `""`, `"`)
		} else {
			f = strings.ToLower(f) // PostgreSQL folds unquoted names
		}
		if f != "" && f != "$user" {
			return f
		}
	}
	return ""
}

// createSchema creates the schema name (from the URL's search_path) if it
// does not exist, under an advisory lock so that instances starting
// together do not race; "" does nothing.
func (s *Store) createSchema(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists); err != nil {
		return dbErr("create schema", err)
	}
	if exists {
		return nil // no CREATE privilege needed
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('tokend.schema:' || $1))", name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{name}.Sanitize())
		return err
	})
	if err != nil {
		return dbErr("create schema "+pgx.Identifier{name}.Sanitize(), err)
	}
	return nil
}

// checkSchema is Open's check with RequireSchema: the schema name (from
// the URL's search_path, "" for the default) exists and holds this build's
// tables.
func (s *Store) checkSchema(ctx context.Context, name string) error {
	if name != "" {
		var exists bool
		if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists); err != nil {
			return dbErr("check schema", err)
		}
		if !exists {
			return fmt.Errorf("postgres: %w: schema %s does not exist", store.ErrNoSchema, pgx.Identifier{name}.Sanitize())
		}
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return dbErr("check schema", err)
	}
	if !exists {
		return fmt.Errorf("postgres: %w (no schema_migrations table)", store.ErrNoSchema)
	}
	var have int
	if err := s.pool.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM schema_migrations").Scan(&have); err != nil {
		return dbErr("check schema", err)
	}
	switch {
	case have > len(migrations):
		return fmt.Errorf("postgres: the database has schema version %d, newer than this build's %d", have, len(migrations))
	case have < len(migrations):
		return fmt.Errorf("postgres: %w: version %d, this build's is %d", store.ErrSchemaOutdated, have, len(migrations))
	}
	return nil
}

// migrate applies the migrations the database lacks, all in one
// transaction that first takes an advisory lock keyed by the schema: a
// second instance waits, then finds nothing left to do.
func (s *Store) migrate(ctx context.Context) error {
	// An up-to-date schema needs no lock and no write (a read-only
	// standby can be opened).
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return dbErr("migrate", err)
	}
	if exists {
		var have int
		if err := s.pool.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM schema_migrations").Scan(&have); err != nil {
			return dbErr("migrate", err)
		}
		if have == len(migrations) {
			return nil
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('tokend.migrate:' || current_schema()))"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM schema_migrations").Scan(&have); err != nil {
			return err
		}
		if have > len(migrations) {
			return fmt.Errorf("postgres: the database has schema version %d, newer than this build's %d", have, len(migrations))
		}
		for v := have + 1; v <= len(migrations); v++ {
			sql, err := migrationFS.ReadFile(migrations[v-1])
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return fmt.Errorf("postgres: migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", v); err != nil {
				return err
			}
		}
		return nil
	})
	return dbErr("migrate", err)
}

// Ping implements store.Store: it writes the heartbeat row, so a database
// that answers but cannot write (read-only, a standby, a full disk) fails;
// every failure wraps store.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO heartbeat (id, beats) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET beats = heartbeat.beats + 1")
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("postgres: ping: %w: %w", store.ErrUnavailable, err)
	}
	return err
}

// Close implements store.Store: it closes every connection of the pool,
// waiting for those in use.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// dbErr wraps a database error for the operation what: nil stays nil,
// errors that already carry a store sentinel keep it, a unique violation
// becomes store.ErrExists and an availability error store.ErrUnavailable.
func dbErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrUnavailable),
		errors.Is(err, store.ErrRedeemed):
		return err
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" { // unique_violation
		return fmt.Errorf("postgres: %s: %w", what, store.ErrExists)
	}
	if unavailable(err) {
		return fmt.Errorf("postgres: %s: %w: %w", what, store.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// unavailable reports whether err means the database cannot serve now but
// may later.
func unavailable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case strings.HasPrefix(pg.Code, "08"), // connection exception
			strings.HasPrefix(pg.Code, "53"),                           // insufficient resources
			pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03", // shutdown, crash, cannot connect now
			pg.Code == "40001", pg.Code == "40P01", // serialization failure, deadlock: rolled back
			pg.Code == "25006": // read-only transaction: a standby, or a primary being failed over
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, puddle.ErrClosedPool) || errors.Is(err, pgconn.ErrConnClosed)
}

// tin is a time as stored: NULL for the zero time.
func tin(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// tout is a stored time: the zero time for NULL.
func tout(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time
}

// row is what pgx.Row and pgx.Rows share.
type row interface{ Scan(...any) error }
