package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/tokend/tokend/store"
)

// ErrNotStore reports a file that Open with Options.RequireSchema will not
// open because it is no tokend store: not an SQLite database, one SQLite
// cannot read (corrupt), or one with tables of its own and not tokend's.
// The file is left exactly as it was.
var ErrNotStore = errors.New("sqlite: not a tokend store")

// requireSchema checks, reading only, that the existing file at path is a
// tokend store of this build's schema version, before Open writes
// anything (the journal_mode(WAL) pragma, the lock file). An empty file
// or an SQLite database without tables fails with an error wrapping
// store.ErrNoSchema; one of an older version with one wrapping
// store.ErrSchemaOutdated; one of a newer version with a plain error; any
// other file with one wrapping ErrNotStore.
func requireSchema(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	f.Close()
	switch {
	case n == 0 && (err == io.EOF):
		return fmt.Errorf("sqlite: %w: %s is empty", store.ErrNoSchema, path)
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("sqlite: read %s: %w", path, err)
	case !bytes.Equal(head[:n], sqliteHeader) || n < len(sqliteHeader):
		return fmt.Errorf("%w: %s is not an SQLite database", ErrNotStore, path)
	}
	// Read only: no journal_mode pragma, nothing written. With no -wal
	// beside it, the file is the whole database, and no process has it
	// open in WAL mode: read it as immutable, so that not even a -shm is
	// made (SQLite makes one, and a -wal, to read a file whose header
	// says WAL). With a -wal, read through it.
	dsn := fileURI(path) + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)"
	if _, err := os.Lstat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		dsn = fileURI(path) + "?mode=ro&immutable=1"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var v, tables, ours int
	q := "SELECT (SELECT count(*) FROM sqlite_schema WHERE type = 'table'), " +
		"(SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('" + strings.Join(tokendTables, "', '") + "'))"
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotStore, path, err)
	}
	if err := db.QueryRowContext(ctx, q).Scan(&tables, &ours); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotStore, path, err)
	}
	switch {
	case v == 0 && tables == 0:
		return fmt.Errorf("sqlite: %w: %s is an SQLite database without tables (schema version 0)", store.ErrNoSchema, path)
	case v == 0:
		return fmt.Errorf("%w: %s is an SQLite database with %d tables of its own and no tokend schema version; point --store at tokend's database", ErrNotStore, path, tables)
	case ours != len(tokendTables):
		return fmt.Errorf("%w: %s has schema version %d but lacks tokend's tables (%s)", ErrNotStore, path, v, strings.Join(tokendTables, ", "))
	case v > len(migrations):
		return fmt.Errorf("sqlite: database schema version %d is newer than this tokend (%d)", v, len(migrations))
	case v < len(migrations):
		return fmt.Errorf("sqlite: %w: version %d, this build's is %d", store.ErrSchemaOutdated, v, len(migrations))
	}
	return nil
}
