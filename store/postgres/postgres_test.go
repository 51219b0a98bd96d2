package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/postgres/pgtest"
	"github.com/tokend/tokend/store/storetest"
)

// newSchema returns the URL of the test database with a schema of its own
// for t (pgtest.Schema).
func newSchema(t testing.TB) string {
	t.Helper()
	return pgtest.ServerURL + pgtest.Schema(t)
}

// open opens a Store on u, closed when t ends.
func open(t testing.TB, u string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), u, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The suite's fixed fake times need the caller's clock.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, newSchema(t), postgres.WithCallerClock()) })
}

// Two Opens on one schema, as two processes would have.
func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		u := newSchema(t)
		return open(t, u, postgres.WithCallerClock()), open(t, u, postgres.WithCallerClock())
	})
}

// Two Opens on one schema with the default clock, the database's, judge
// time alike however skewed their callers' clocks.
func TestClock(t *testing.T) {
	storetest.RunClock(t, func(t *testing.T) (store.Store, store.Store) {
		u := newSchema(t)
		return open(t, u), open(t, u)
	})
}

// Instances starting together on an empty schema all open it, and the
// schema is migrated once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	u := newSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), u)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var rows, version int
	if err := conn.QueryRow(t.Context(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if want := postgres.SchemaVersion; rows != want || version != want {
		t.Fatalf("schema_migrations has %d rows up to version %d; want %d rows, version %d", rows, version, want, want)
	}
}

// A database that is not there is store.ErrUnavailable, from Open.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of a closed port: %v, want store.ErrUnavailable", err)
	}
}

// A closed Store answers store.ErrUnavailable.
func TestClosed(t *testing.T) {
	s := open(t, newSchema(t))
	_ = s.Close()
	if err := s.Ping(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping of a closed store: %v, want store.ErrUnavailable", err)
	}
}

// Ping writes: it succeeds on a writable database and fails, as
// unavailable, on a read-only session (which Open still accepts, the
// schema being up to date).
func TestPingWrites(t *testing.T) {
	u := newSchema(t)
	s := open(t, u)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	ro := open(t, u+"&default_transaction_read_only=on")
	if err := ro.Ping(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping on a read-only session: %v, want store.ErrUnavailable", err)
	}
}

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func newHash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// A server that accepts the connection and never answers (a network that
// drops packets) fails Open within the default connect timeout.
func TestOpenSilentServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 3*postgres.DefaultConnectTimeout)
	defer cancel()
	_, err = postgres.Open(ctx, "postgres://postgres@"+ln.Addr().String()+"/test?sslmode=disable")
	if !errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
		t.Fatalf("Open against a silent server: %v (context: %v); want ErrUnavailable within the connect timeout", err, ctx.Err())
	}
}

// With RequireSchema, Open creates and migrates nothing: an empty schema
// is store.ErrNoSchema and stays empty, an older one
// store.ErrSchemaOutdated; a migrated one opens.
func TestRequireSchema(t *testing.T) {
	u := newSchema(t)
	ctx := t.Context()
	tables := func() int {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := postgres.Open(ctx, u, postgres.RequireSchema()); !errors.Is(err, store.ErrNoSchema) {
		t.Fatalf("an empty schema: %v", err)
	}
	if n := tables(); n != 0 {
		t.Fatalf("RequireSchema created %d tables", n)
	}
	open(t, u)
	s, err := postgres.Open(ctx, u, postgres.RequireSchema())
	if err != nil {
		t.Fatalf("a migrated schema: %v", err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, u, postgres.RequireSchema()); !errors.Is(err, store.ErrSchemaOutdated) {
		t.Fatalf("an older schema: %v", err)
	}
}
