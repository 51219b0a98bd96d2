// Package pgtest gives tests a PostgreSQL schema of their own on the
// shared test server (PostgreSQL 15, trust auth, database "test" on
// 127.0.0.1:5432), dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerURL is the shared test server's database URL, without a schema.
const ServerURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Schema creates a schema of its own for t, dropped when t ends, and
// returns its URL-query parameter, "&search_path=NAME", to append to a URL
// of the test database. Without a server it fails the test when the
// environment variable CI is set (CI must not pass by skipping), and
// skips it otherwise.
func Schema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at %s: %v", ServerURL, err)
		}
		t.Skipf("PostgreSQL at %s not reachable (%v); start PostgreSQL 15 there with trust auth and a database \"test\" to run this test", ServerURL, err)
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
		conn, err := pgx.Connect(ctx, ServerURL)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return "&search_path=" + url.QueryEscape(schema)
}
