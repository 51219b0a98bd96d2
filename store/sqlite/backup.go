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
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrInUse reports a database that another process, or another Store of
// this one, has open while Restore would replace it, or that a Restore is
// replacing while Open or Backup would open it. It comes from the lock
// beside the database (the file path+".lock"), which every Store and
// Backup holds shared and Restore exclusive.
var ErrInUse = errors.New("sqlite: the database is in use")

// ErrInvalidBackup reports a file that Restore will not put in place: not
// an SQLite database, not one of tokend (no schema version, or none of its
// tables), of a schema version newer than this build's, failing SQLite's
// integrity check, or with a -wal file beside it (not a single-file
// backup).
var ErrInvalidBackup = errors.New("sqlite: not a tokend backup this tokend can restore")

// lockSuffix names the lock file beside a database.
const lockSuffix = ".lock"

// sqliteHeader starts every SQLite database file (its file format, §1.3).
var sqliteHeader = []byte("SQLite format 3\x00")

// Summary describes a database file that Backup wrote or Restore put in
// place.
type Summary struct {
	Path          string // absolute
	Size          int64  // bytes
	SchemaVersion int    // PRAGMA user_version
	// Rows of the clients, users and families (logins, ended ones
	// included until the garbage collector deletes them) tables.
	Clients, Users, Families int
}

// Backup writes a copy of the database at src to the new file dst: one
// consistent snapshot, taken while other processes (tokend serve) go on
// reading and writing, by SQLite's VACUUM INTO, which reads in one
// transaction (a WAL reader never blocks or is blocked by the writer).
// The copy is one file, with no -wal beside it, and holds what was
// committed when the snapshot began.
//
// The database holds the signing keys, so the copy is its owner's alone
// from its first byte: it is written in a directory of mode 0700 made
// beside dst, set to mode 0600, synced, checked (as Restore checks a
// backup), and only then moved to dst. An existing dst is refused with an
// error wrapping fs.ErrExist unless overwrite is set; then it is replaced
// atomically (rename(2)). Nothing is left at dst on failure.
//
// A dst that is, once symbolic links are resolved, the database itself or
// one of its own files (its -wal, -shm, -journal or lock file) is refused,
// overwrite or not, and left as it is; so is a directory.
//
// Backup fails with an error wrapping ErrInUse while a Restore replaces
// src, and with one wrapping fs.ErrNotExist if there is no database at src
// (it never creates one).
func Backup(ctx context.Context, src, dst string, overwrite bool) (Summary, error) {
	src, dst, err := absPaths(src, dst)
	if err != nil {
		return Summary{}, err
	}
	if src, err = resolvePath(src); err != nil {
		return Summary{}, err
	}
	if err := notOwnFile(src, dst); err != nil {
		return Summary{}, err
	}
	if _, err := os.Stat(src); err != nil {
		return Summary{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		return Summary{}, fmt.Errorf("sqlite: backup: %s is a directory: a backup cannot replace it (with overwrite or not); name a file", dst)
	}
	if !overwrite {
		if _, err := os.Lstat(dst); err == nil {
			return Summary{}, fmt.Errorf("sqlite: backup: %s: %w", dst, fs.ErrExist)
		}
	}
	lk, err := lock(src, false)
	if errors.Is(err, ErrInUse) {
		return Summary{}, fmt.Errorf("sqlite: backup %s: a restore is replacing it: %w", src, err)
	}
	if err != nil {
		return Summary{}, err
	}
	defer func() { _ = lk.unlock() }()
	// mode=rw: never create a database.
	db, err := sql.Open("sqlite", fileURI(src)+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return Summary{}, fmt.Errorf("sqlite: backup: open %s: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	return vacuumInto(ctx, db, dst, func(tmp string) error {
		return placeNew(tmp, dst, overwrite)
	})
}

// ownSuffixes name the files of a database beside it, and what each is.
var ownSuffixes = []struct{ suffix, what string }{
	{"", "database itself"},
	{"-wal", "database's -wal (its log)"},
	{"-shm", "database's -shm (its log's index)"},
	{"-journal", "database's -journal (its rollback log)"},
	{lockSuffix, "database's lock file"},
}

// notOwnFile fails if dst, resolved, is one of the files of the database
// at db (a resolved path), by name or (a hard link) by identity: a
// backup written there would replace it.
func notOwnFile(db, dst string) error {
	real, err := resolvePath(dst)
	if err != nil {
		return err
	}
	dfi, derr := os.Stat(real)
	for _, o := range ownSuffixes {
		own := db + o.suffix
		if real == own {
			return fmt.Errorf("sqlite: backup: %s is the %s (%s): name another file", dst, o.what, own)
		}
		if derr != nil {
			continue
		}
		if fi, err := os.Stat(own); err == nil && os.SameFile(dfi, fi) {
			return fmt.Errorf("sqlite: backup: %s is the %s (%s, a hard link to it): name another file", dst, o.what, own)
		}
	}
	return nil
}

// vacuumInto writes the database db holds to a file in a new directory of
// mode 0700 beside dst, makes it mode 0600, syncs and checks it, and
// hands its path to place, which moves it to where it belongs. The
// directory is removed when vacuumInto returns.
func vacuumInto(ctx context.Context, db *sql.DB, dst string, place func(tmp string) error) (Summary, error) {
	dir, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-") // mode 0700
	if err != nil {
		return Summary{}, fmt.Errorf("sqlite: make a private directory beside %s: %w", dst, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "db")
	// A bound parameter, never a path pasted into SQL.
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return Summary{}, dbErr("copy the database (VACUUM INTO)", err)
	}
	if err := os.Chmod(tmp, fileMode); err != nil {
		return Summary{}, fmt.Errorf("sqlite: %w", err)
	}
	if err := syncPath(tmp); err != nil {
		return Summary{}, err
	}
	sum, err := inspect(ctx, tmp)
	if err != nil {
		return Summary{}, fmt.Errorf("sqlite: the copy fails its check: %w", err)
	}
	if err := place(tmp); err != nil {
		return Summary{}, err
	}
	if err := syncPath(filepath.Dir(dst)); err != nil {
		return Summary{}, err
	}
	sum.Path = dst
	return sum, nil
}

// placeNew moves the file tmp to dst: with rename(2) if overwrite is set,
// otherwise with link(2), which fails if dst exists (someone made it
// meanwhile).
func placeNew(tmp, dst string, overwrite bool) error {
	if overwrite {
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	}
	if err := os.Link(tmp, dst); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// Restored is what Restore did.
type Restored struct {
	Summary // the database now at the store's path
	// Previous is where the database Restore replaced now is, with its
	// -wal as Previous+"-wal" if it had one ("" if there was no
	// database). Opened as a store, it is exactly the database that was
	// replaced, its log included.
	Previous    string
	PreviousWAL bool
}

// Restore puts the backup at src (a file Backup wrote, or any single-file
// copy of a tokend SQLite database) in place of the database at path, so
// that the next Open of path finds exactly the backup's data.
//
// Before it touches anything it checks src: an SQLite database with
// tokend's tables, of a schema version this build opens (an older one is
// migrated by the next Open), passing PRAGMA integrity_check, and with no
// -wal beside it. Otherwise it fails with an error wrapping
// ErrInvalidBackup. Then it takes the database's lock exclusive: while
// any Store or Backup, in any process (tokend serve, an admin command),
// has path open, it fails with an error wrapping ErrInUse, having changed
// nothing; while it holds the lock, Open and Backup fail the same way.
//
// It copies src into a file of mode 0600 beside path (VACUUM INTO, in a
// private directory), synced and checked again. The database it replaces
// is kept: linked as path+".before-restore-"+now (UTC,
// 20060102T150405Z), with its -wal, if any, as that name plus "-wal".
// Then it removes path's -wal and -shm (a -wal left by a server that
// crashed would otherwise be replayed over the backup), and renames the
// copy to path, an atomic step; the directory is synced after each step.
// A missing directory of path (the last level) is made with mode 0700.
// A path through symbolic links is resolved first (as Open resolves it):
// Restore locks and replaces the real file, and the links keep pointing
// at it.
//
// If it fails or is interrupted after the previous database was kept,
// that copy is complete; path holds either the previous database or the
// backup.
func Restore(ctx context.Context, src, path string, now time.Time) (Restored, error) {
	src, path, err := absPaths(src, path)
	if err != nil {
		return Restored{}, err
	}
	if path, err = resolvePath(path); err != nil {
		return Restored{}, err
	}
	if src, err = resolvePath(src); err != nil {
		return Restored{}, err
	}
	if src == path {
		return Restored{}, fmt.Errorf("sqlite: restore: the backup %s is the database itself", src)
	}
	if fi, err := os.Stat(src + "-wal"); err == nil && fi.Size() > 0 {
		return Restored{}, fmt.Errorf("%w: %s has a -wal file beside it, so it is not a single-file backup (copied from a running store?); make one with tokend backup", ErrInvalidBackup, src)
	}
	db, err := openImmutable(src)
	if err != nil {
		return Restored{}, err
	}
	defer db.Close()
	if _, err := checkDB(ctx, db, src); err != nil {
		return Restored{}, err
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return Restored{}, fmt.Errorf("sqlite: create the database's directory: %w", err)
		}
	}
	lk, err := lock(path, true)
	if errors.Is(err, ErrInUse) {
		return Restored{}, fmt.Errorf("sqlite: restore: %s is open in another process (tokend serve, an admin command, a backup); stop it first: %w", path, err)
	}
	if err != nil {
		return Restored{}, err
	}
	defer func() { _ = lk.unlock() }()
	var out Restored
	sum, err := vacuumInto(ctx, db, path, func(tmp string) error {
		prev, hadWAL, err := keepPrevious(path, now)
		if err != nil {
			return err
		}
		out.Previous, out.PreviousWAL = prev, hadWAL
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("sqlite: restore: %w (the previous database is kept as %s)", err, prev)
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	out.Summary = sum
	return out, nil
}

// keepPrevious links the database at path, if there is one, and its -wal
// and -journal, to a free name path+".before-restore-TIME", syncs the
// directory, and then removes path's -wal, -shm and -journal, leaving
// path itself (the rename that follows replaces it). It returns the name
// and whether there was a -wal.
func keepPrevious(path string, now time.Time) (string, bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		// No database: no log of one either, unless a crash left one.
		return "", false, removeLogs(path)
	}
	base := path + ".before-restore-" + now.UTC().Format("20060102T150405Z")
	prev := base
	for i := 2; ; i++ {
		err := os.Link(path, prev)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", false, fmt.Errorf("sqlite: restore: keep the previous database: %w", err)
		}
		prev = base + "-" + strconv.Itoa(i)
	}
	hadWAL := false
	for _, suffix := range []string{"-wal", "-journal"} {
		err := os.Link(path+suffix, prev+suffix)
		switch {
		case err == nil:
			hadWAL = hadWAL || suffix == "-wal"
		case !errors.Is(err, fs.ErrNotExist):
			return "", false, fmt.Errorf("sqlite: restore: keep the previous database's %s: %w", suffix, err)
		}
	}
	if err := syncPath(filepath.Dir(path)); err != nil {
		return "", false, err
	}
	if err := removeLogs(path); err != nil {
		return "", false, fmt.Errorf("%w (the previous database is kept as %s)", err, prev)
	}
	return prev, hadWAL, nil
}

// removeLogs removes the -wal, -shm and -journal files of the database at
// path and syncs the directory.
func removeLogs(path string) error {
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite: restore: remove the stale %s: %w", suffix, err)
		}
	}
	return syncPath(filepath.Dir(path))
}

// Inspect checks the database file at path as Restore checks a backup
// (see ErrInvalidBackup) and describes it. It reads the file as it is,
// without its -wal: use it on a backup, not on a store a server has
// open.
func Inspect(ctx context.Context, path string) (Summary, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Summary{}, fmt.Errorf("sqlite: %w", err)
	}
	return inspect(ctx, abs)
}

func inspect(ctx context.Context, path string) (Summary, error) {
	db, err := openImmutable(path)
	if err != nil {
		return Summary{}, err
	}
	defer db.Close()
	return checkDB(ctx, db, path)
}

// openImmutable opens the database file at path read-only, as a file no
// process changes (SQLite's immutable URI parameter: no locks, no log),
// after checking that it is an SQLite database at all.
func openImmutable(path string) (*sql.DB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	head := make([]byte, len(sqliteHeader))
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || !bytes.Equal(head, sqliteHeader) {
		return nil, fmt.Errorf("%w: %s is not an SQLite database", ErrInvalidBackup, path)
	}
	db, err := sql.Open("sqlite", fileURI(path)+"?mode=ro&immutable=1")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// tokendTables are tables every schema version has.
var tokendTables = []string{"clients", "users", "keys", "secrets", "families"}

// checkDB checks that db, the file at path, is a tokend database this
// build can open, passing SQLite's integrity check, and describes it.
func checkDB(ctx context.Context, db *sql.DB, path string) (Summary, error) {
	sum := Summary{Path: path}
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&sum.SchemaVersion); err != nil {
		return sum, fmt.Errorf("%w: %s: %w", ErrInvalidBackup, path, err)
	}
	switch v := sum.SchemaVersion; {
	case v == 0:
		return sum, fmt.Errorf("%w: %s has no schema version: not a tokend database", ErrInvalidBackup, path)
	case v > len(migrations):
		return sum, fmt.Errorf("%w: %s has schema version %d, newer than this tokend's (%d): restore it with the tokend that made it", ErrInvalidBackup, path, v, len(migrations))
	}
	var n int
	q := "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('" + strings.Join(tokendTables, "', '") + "')"
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return sum, fmt.Errorf("%w: %s: %w", ErrInvalidBackup, path, err)
	}
	if n != len(tokendTables) {
		return sum, fmt.Errorf("%w: %s lacks tokend's tables (%s)", ErrInvalidBackup, path, strings.Join(tokendTables, ", "))
	}
	var ok string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check(1)").Scan(&ok); err != nil {
		return sum, fmt.Errorf("%w: %s: integrity check: %w", ErrInvalidBackup, path, err)
	}
	if ok != "ok" {
		return sum, fmt.Errorf("%w: %s fails SQLite's integrity check: %s", ErrInvalidBackup, path, ok)
	}
	if err := db.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM clients), (SELECT count(*) FROM users), (SELECT count(*) FROM families)").
		Scan(&sum.Clients, &sum.Users, &sum.Families); err != nil {
		return sum, fmt.Errorf("%w: %s: %w", ErrInvalidBackup, path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return sum, fmt.Errorf("sqlite: %w", err)
	}
	sum.Size = fi.Size()
	return sum, nil
}

// fileURI is path as an SQLite URI filename (file:), its '%', '?' and
// '#' escaped so that none ends the path.
func fileURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// absPaths makes a and b absolute and clean.
func absPaths(a, b string) (string, string, error) {
	a, err := filepath.Abs(a)
	if err != nil {
		return "", "", fmt.Errorf("sqlite: %w", err)
	}
	b, err = filepath.Abs(b)
	if err != nil {
		return "", "", fmt.Errorf("sqlite: %w", err)
	}
	return a, b, nil
}

// syncPath syncs the file or directory at path to disk.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sqlite: sync: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sqlite: sync %s: %w", path, err)
	}
	return nil
}
