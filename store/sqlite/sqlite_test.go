package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
	"github.com/tokend/tokend/store/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, filepath.Join(t.TempDir(), "t.db")) })
}

// Two Opens of one file, as two processes would have.
func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		path := filepath.Join(t.TempDir(), "t.db")
		return open(t, path), open(t, path)
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	s := open(t, path)
	hash := bytes.Repeat([]byte{0xab}, 32)
	now := time.Now()
	f := store.Family{ID: "f", ClientID: "c", Subject: "s", CreatedAt: now, LastUsedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), TokenHash: hash}
	if err := s.CreateFamily(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	if fam, err := s.GetFamily(t.Context(), "f"); err != nil || !bytes.Equal(fam.TokenHash, hash) {
		t.Fatalf("after reopening: %v, %v", fam, err)
	}
}

func TestCancelledWriteIsNotApplied(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateUser(ctx, store.User{Name: "u", PasswordHash: "h"}); err == nil {
		t.Fatal("a write with a cancelled context succeeded")
	}
	if _, err := s.GetUser(t.Context(), "u"); err == nil {
		t.Fatal("a cancelled write was applied")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A panic in RewriteSecrets' fn reaches the caller, not the writer
// goroutine: nothing is written and the store keeps working.
func TestRewriteSecretsPanic(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	must(t, s.CreateKey(ctx, store.Key{ID: "k", Algorithm: "EdDSA", Private: []byte("private")}))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want the panic of fn", p)
			}
		}()
		_ = s.RewriteSecrets(ctx, func(string, string, []byte) ([]byte, error) { panic("boom") })
		t.Fatal("RewriteSecrets returned")
	}()
	ks, err := s.ListKeys(ctx)
	must(t, err)
	if string(ks[0].Private) != "private" {
		t.Fatalf("key %q after the panic", ks[0].Private)
	}
	must(t, s.CreateUser(ctx, store.User{Name: "after", PasswordHash: "h"}))
}

// With RequireSchema, Open creates nothing: a missing file stays missing
// (store.ErrNoSchema), an empty one gets no table, an older schema is
// store.ErrSchemaOutdated; a migrated file opens.
func TestRequireSchema(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	missing := filepath.Join(dir, "sub", "missing.db")
	if _, err := sqlite.OpenWithOptions(ctx, missing, sqlite.Options{RequireSchema: true}); !errors.Is(err, store.ErrNoSchema) {
		t.Fatalf("a missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RequireSchema made the directory: %v", err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.OpenWithOptions(ctx, empty, sqlite.Options{RequireSchema: true}); !errors.Is(err, store.ErrNoSchema) {
		t.Fatalf("an empty file: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+empty+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables in the empty file (%v)", n, err)
	}
	db.Close()

	path := filepath.Join(dir, "tokend.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = sqlite.OpenWithOptions(ctx, path, sqlite.Options{RequireSchema: true}); err != nil {
		t.Fatalf("a migrated file: %v", err)
	}
	s.Close()
	if db, err = sql.Open("sqlite", "file:"+path); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := sqlite.OpenWithOptions(ctx, path, sqlite.Options{RequireSchema: true}); !errors.Is(err, store.ErrSchemaOutdated) {
		t.Fatalf("an older schema: %v", err)
	}
}

// RequireSchema opens a store another Store has open (its schema read
// through the -wal), and refuses another program's database with
// ErrNotStore, leaving it byte for byte as it was, no lock file made.
func TestRequireSchemaReadsOnly(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	s := open(t, path)
	defer s.Close()
	a, err := sqlite.OpenWithOptions(ctx, path, sqlite.Options{RequireSchema: true})
	if err != nil {
		t.Fatalf("RequireSchema on a store that is open: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	foreign := filepath.Join(dir, "f.db")
	db, err := sql.Open("sqlite", "file:"+foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	was, err := os.ReadFile(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.OpenWithOptions(ctx, foreign, sqlite.Options{RequireSchema: true}); !errors.Is(err, sqlite.ErrNotStore) {
		t.Fatalf("RequireSchema on another program's database: %v, want ErrNotStore", err)
	}
	if got, err := os.ReadFile(foreign); err != nil || !bytes.Equal(got, was) {
		t.Fatalf("the refused open changed the file: %v", err)
	}
	if _, err := os.Stat(foreign + ".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused open made a lock file: %v", err)
	}
}
