package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/postgres"
	"github.com/tokend/tokend/store/storetest"
)

// serverURL is the test server: PostgreSQL 15 with trust auth on loopback.
const serverURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// newSchema creates a schema of its own for t, dropped when t ends, and
// returns the URL of the test database with that schema as search_path.
// Without a server it fails the test under CI and skips it elsewhere.
func newSchema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at %s: %v", serverURL, err)
		}
		t.Skipf("PostgreSQL at %s not reachable (%v); start PostgreSQL 15 there with trust auth and a database \"test\" to run this test", serverURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "tokend_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return serverURL + "&search_path=" + url.QueryEscape(schema)
}

// open opens a Store on u, closed when t ends.
func open(t testing.TB, u string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, newSchema(t)) })
}

// Two Opens on one schema, as two processes would have.
func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
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
	if rows != 1 || version != 1 {
		t.Fatalf("schema_migrations has %d rows up to version %d; want 1 row, version 1", rows, version)
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

// twoHandles returns two Stores on one schema, as two processes would
// have, and a family "f" created through the first with its first token.
func twoHandles(t *testing.T) ([2]*postgres.Store, []byte) {
	u := newSchema(t)
	h := [2]*postgres.Store{open(t, u), open(t, u)}
	first := newHash()
	f := store.Family{ID: "f", ClientID: "c", Subject: "alice", CreatedAt: t0, LastUsedAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour)}
	if err := h[0].CreateFamily(t.Context(), f, store.RefreshToken{Hash: first, IssuedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return h, first
}

// rotateAll rotates old through both handles, n times each at once, to
// the successor next(i) returns, and counts the outcomes (ErrRevoked
// counts as 0).
func rotateAll(t *testing.T, h [2]*postgres.Store, old []byte, n int, next func(i int) []byte) map[store.Outcome]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[store.Outcome]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 2 * n {
		wg.Go(func() {
			<-start
			res, err := h[i%2].Rotate(t.Context(), store.RotateRequest{Old: old, New: next(i), Now: t0.Add(time.Second),
				Grace: time.Minute, IdleExpiresAt: t0.Add(2 * time.Hour)})
			if err != nil && !errors.Is(err, store.ErrRevoked) {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[res.Outcome]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return counts
}

// Two handles rotating one token to one successor: exactly one Rotated,
// the rest Repeated, and that successor is the current token.
func TestTwoHandlesSameSuccessor(t *testing.T) {
	h, first := twoHandles(t)
	next := newHash()
	counts := rotateAll(t, h, first, 20, func(int) []byte { return next })
	if counts[store.Rotated] != 1 || counts[store.Repeated] != 39 {
		t.Fatalf("outcomes %v; want 1 rotated, 39 repeated", counts)
	}
	for _, s := range h {
		tok, f, err := s.GetRefreshToken(t.Context(), next)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Generation != 1 || !tok.RotatedAt.IsZero() || f.Generation != 1 || !f.RevokedAt.IsZero() {
			t.Fatalf("successor %+v of family %+v; want generation 1, current, family active", tok, f)
		}
	}
}

// Two handles rotating one token to different successors: one wins, the
// rest are reuse, and the family is revoked for reuse as seen by both.
func TestTwoHandlesDifferentSuccessors(t *testing.T) {
	h, first := twoHandles(t)
	counts := rotateAll(t, h, first, 10, func(int) []byte { return newHash() })
	if counts[store.Rotated] != 1 || counts[store.ReuseDetected]+counts[0] != 19 || counts[store.ReuseDetected] == 0 {
		t.Fatalf("outcomes %v; want 1 rotated, the rest reuse (or revoked)", counts)
	}
	for _, s := range h {
		f, err := s.GetFamily(t.Context(), "f")
		if err != nil {
			t.Fatal(err)
		}
		if f.RevokeReason != store.ReasonReuse || f.Generation != 1 {
			t.Fatalf("family %+v; want revoked for reuse at generation 1", f)
		}
	}
}
