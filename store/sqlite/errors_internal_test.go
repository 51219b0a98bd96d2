package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/tokend/tokend/store"
)

// SQLite's errors are sorted into those that may pass (store.ErrUnavailable)
// and those of the request, each provoked for real on a scratch database.
func TestTransient(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	conn := func(t *testing.T, dsn string) *sql.Conn {
		t.Helper()
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	exec := func(c *sql.Conn, qs ...string) error {
		for _, q := range qs {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}
	setup := conn(t, "file:"+path+"?_pragma=journal_mode(WAL)")
	if err := exec(setup, "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)", "INSERT INTO t VALUES ('a', x'00')"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code      int
		provoke   func(t *testing.T) error
		transient bool
	}{
		{sqlite3lib.SQLITE_FULL, func(t *testing.T) error {
			return exec(conn(t, "file:"+path), "PRAGMA max_page_count = 1", "INSERT INTO t VALUES ('big', zeroblob(100000))")
		}, true},
		{sqlite3lib.SQLITE_READONLY, func(t *testing.T) error {
			return exec(conn(t, "file:"+path), "PRAGMA query_only = 1", "INSERT INTO t VALUES ('b', NULL)")
		}, true},
		{sqlite3lib.SQLITE_BUSY, func(t *testing.T) error {
			holder := conn(t, "file:"+path)
			if err := exec(holder, "BEGIN IMMEDIATE"); err != nil {
				t.Fatal(err)
			}
			defer exec(holder, "ROLLBACK")
			return exec(conn(t, "file:"+path+"?_pragma=busy_timeout(0)"), "BEGIN IMMEDIATE")
		}, true},
		{sqlite3lib.SQLITE_CANTOPEN, func(t *testing.T) error {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "missing", "t.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			return db.PingContext(ctx)
		}, true},
		{sqlite3lib.SQLITE_CONSTRAINT, func(t *testing.T) error {
			return exec(conn(t, "file:"+path), "INSERT INTO t VALUES ('a', NULL)")
		}, false},
		{sqlite3lib.SQLITE_ERROR, func(t *testing.T) error {
			return exec(conn(t, "file:"+path), "SELECT nope FROM t")
		}, false},
	} {
		t.Run(sqlite3.ErrorCodeString[tc.code], func(t *testing.T) {
			err := tc.provoke(t)
			var e *sqlite3.Error
			if !errors.As(err, &e) || e.Code()&0xff != tc.code {
				t.Fatalf("provoked %v, want SQLite's code %d", err, tc.code)
			}
			if got := transient(err); got != tc.transient {
				t.Fatalf("transient(%v) = %v, want %v", err, got, tc.transient)
			}
			wrapped := dbErr("test", err)
			if errors.Is(wrapped, store.ErrUnavailable) != tc.transient || !errors.Is(wrapped, err) {
				t.Fatalf("dbErr = %v: ErrUnavailable %v, want %v, with the original kept", wrapped, errors.Is(wrapped, store.ErrUnavailable), tc.transient)
			}
		})
	}
	if transient(context.Canceled) || transient(nil) {
		t.Fatal("a non-SQLite error is transient")
	}
}
