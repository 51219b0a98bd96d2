package sqlite_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
	"github.com/tokend/tokend/store/sqlite/sqlitetest"
)

// newValues returns n random values of size bytes.
func newValues(n, size int) [][]byte {
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = make([]byte, size)
		_, _ = rand.Read(vs[i])
	}
	return vs
}

// rewrite replaces every key and secret of st by a new random value one
// byte longer (as sealing lengthens them), and returns the values it
// replaced.
func rewrite(t *testing.T, st store.Store) [][]byte {
	t.Helper()
	var old [][]byte
	err := st.RewriteSecrets(t.Context(), func(_, _ string, v []byte) ([]byte, error) {
		old = append(old, bytes.Clone(v))
		return newValues(1, len(v)+1)[0], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return old
}

// A server's store has written signing keys and a secret in clear, and
// served; an admin command's store, open beside it, rewrites them and
// scrubs: then no byte of an old value is left in the database, its -wal
// or its -shm file, and the server's store goes on. While a connection
// keeps reading an older snapshot, Scrub says that the files may still
// hold old values, which they do; once the read ends, Scrub finishes.
func TestScrub(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "t.db")
	server := open(t, path)
	now := time.Now()
	// A hundred ES256-sized keys fill several pages, so that rewriting
	// them moves rows between pages and leaves copies in free space.
	keys := newValues(100, 138)
	for i, k := range keys {
		must(t, server.CreateKey(ctx, store.Key{ID: fmt.Sprintf("k%03d", i), Algorithm: "ES256", Private: k, CreatedAt: now}))
	}
	secret := newValues(1, 32)[0]
	if _, err := server.Secret(ctx, "refresh-successor", secret); err != nil {
		t.Fatal(err)
	}
	must(t, server.WriterPragma(ctx, "wal_checkpoint(TRUNCATE)")) // the values reach the database file
	for i := range 20 {
		must(t, server.RetireKey(ctx, fmt.Sprintf("k%03d", i), now))
		f := store.Family{ID: fmt.Sprintf("f%d", i), ClientID: "c", Subject: "s", CreatedAt: now, LastUsedAt: now,
			IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), TokenHash: newValues(1, 32)[0]}
		must(t, server.CreateFamily(ctx, f))
	}
	if _, err := server.ListKeys(ctx); err != nil {
		t.Fatal(err)
	}

	admin := open(t, path)
	clear := rewrite(t, admin)
	if len(clear) != len(keys)+1 {
		t.Fatalf("RewriteSecrets passed %d values, want %d", len(clear), len(keys)+1)
	}
	if found := sqlitetest.Holding(t, path, clear); len(found) == 0 {
		t.Fatal("before Scrub no file holds an old value: the test would prove nothing")
	}
	if err := admin.Scrub(ctx); err != nil {
		t.Fatal(err)
	}
	if found := sqlitetest.Holding(t, path, clear); found != nil {
		t.Fatalf("after Scrub: %s", strings.Join(found, ", "))
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != 0 {
		t.Fatalf("after Scrub the -wal file is %v, %v; want empty", fi.Size(), err)
	}
	// The server's store reads the new values and writes on.
	ks, err := server.ListKeys(ctx)
	if err != nil || len(ks) != len(keys) || len(ks[0].Private) != 139 {
		t.Fatalf("the server's store after Scrub: %d keys (%v)", len(ks), err)
	}
	must(t, server.RetireKey(ctx, "k099", now))

	// A connection that keeps an older snapshot open.
	reader, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	tx, err := reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM keys").Scan(&n); err != nil {
		t.Fatal(err)
	}
	sealed := rewrite(t, admin)
	wait, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = admin.Scrub(wait)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), path+"-wal") || !strings.Contains(err.Error(), "may still hold old values") {
		t.Fatalf("Scrub while a read holds an older snapshot: %v; want ErrUnavailable naming %s and its -wal", err, filepath.Base(path))
	}
	if sqlitetest.Holding(t, path, sealed) == nil {
		t.Fatal("no file holds an old value, yet Scrub said one may: the test would prove nothing")
	}
	must(t, tx.Rollback())
	if err := admin.Scrub(ctx); err != nil {
		t.Fatal(err)
	}
	if found := sqlitetest.Holding(t, path, append(sealed, clear...)); found != nil {
		t.Fatalf("after the read ended and Scrub ran again: %s", strings.Join(found, ", "))
	}
}

// Scrub on a closed store is ErrUnavailable.
func TestScrubClosed(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	must(t, s.Close())
	if err := s.Scrub(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Scrub after Close: %v", err)
	}
}

var _ store.Scrubber = (*sqlite.Store)(nil)
