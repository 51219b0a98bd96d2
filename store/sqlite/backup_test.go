//go:build unix

package sqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

var restoreTime = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// withUsers makes the store at path with the users names, and closes it.
func withUsers(t *testing.T, path string, names ...string) {
	t.Helper()
	s := open(t, path)
	for _, n := range names {
		must(t, s.CreateUser(t.Context(), store.User{Name: n, PasswordHash: "h"}))
	}
	must(t, s.Close())
}

// userNames opens the store at path and lists its users.
func userNames(t *testing.T, path string) []string {
	t.Helper()
	s := open(t, path)
	defer s.Close()
	us, err := s.ListUsers(t.Context())
	must(t, err)
	var names []string
	for _, u := range us {
		names = append(names, u.Name)
	}
	return names
}

// files lists the names in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	must(t, err)
	must(t, os.WriteFile(dst, b, 0o600))
}

// A backup taken while a Store has the database open (its last writes
// still in the -wal) holds them, is mode 0600 whatever the umask, is
// one file, and is described; the private directory it was written in is
// gone. An existing file is refused and left as it was, unless overwrite.
func TestBackup(t *testing.T) {
	setUmask(t, 0o022)
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	s := open(t, path)
	must(t, s.CreateClient(t.Context(), store.Client{ID: "app"}))
	must(t, s.CreateUser(t.Context(), store.User{Name: "alice", PasswordHash: "h"}))
	out := filepath.Join(t.TempDir(), "backup.db")
	sum, err := sqlite.Backup(t.Context(), path, out, false)
	must(t, err)
	if sum.Path != out || sum.Clients != 1 || sum.Users != 1 || sum.Families != 0 || sum.SchemaVersion != sqlite.SchemaVersion || sum.Size == 0 {
		t.Fatalf("summary %+v", sum)
	}
	if m := mode(t, out); m != 0o600 {
		t.Fatalf("backup mode %04o, want 0600", m)
	}
	if got := files(t, filepath.Dir(out)); !slices.Equal(got, []string{"backup.db"}) {
		t.Fatalf("beside the backup: %q", got)
	}

	must(t, s.CreateUser(t.Context(), store.User{Name: "bob", PasswordHash: "h"}))
	before, err := os.ReadFile(out)
	must(t, err)
	if _, err := sqlite.Backup(t.Context(), path, out, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("backup over an existing file: %v, want fs.ErrExist", err)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Fatal("a refused backup changed the existing file")
	}
	must(t, os.Chmod(out, 0o644))
	sum, err = sqlite.Backup(t.Context(), path, out, true)
	must(t, err)
	if sum.Users != 2 || mode(t, out) != 0o600 {
		t.Fatalf("overwritten backup: %+v, mode %04o", sum, mode(t, out))
	}
	if got := files(t, filepath.Dir(out)); !slices.Equal(got, []string{"backup.db"}) {
		t.Fatalf("beside the backup: %q", got)
	}

	// No database: refused, nothing created.
	missing := filepath.Join(t.TempDir(), "none.db")
	if _, err := sqlite.Backup(t.Context(), missing, filepath.Join(dir, "x.db"), false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("backup of a missing database: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("backup created the database it was asked to copy")
	}
}

// A server crashed with a commit in the -wal only (user bob, made after
// the backup): restoring the backup over it leaves exactly the backup's
// data (alice, not bob); the previous database is kept with its -wal, and
// opened as a store it still has bob.
func TestRestoreOverStaleWAL(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	withUsers(t, path, "alice")
	bak := filepath.Join(t.TempDir(), "backup.db")
	_, err := sqlite.Backup(ctx, path, bak, false)
	must(t, err)

	// bob commits into the -wal, which is never checkpointed; the files
	// are copied while the connection is open, as a kill would leave them.
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=wal_autocheckpoint(0)")
	must(t, err)
	defer raw.Close()
	_, err = raw.ExecContext(ctx, "INSERT INTO users (name, password_hash) VALUES ('bob', 'h')")
	must(t, err)
	crashed := filepath.Join(t.TempDir(), "tokend.db")
	copyFile(t, path, crashed)
	copyFile(t, path+"-wal", crashed+"-wal")
	must(t, raw.Close())
	// The scenario is real: opened as it is, the crashed store has bob.
	probe := filepath.Join(t.TempDir(), "tokend.db")
	copyFile(t, crashed, probe)
	copyFile(t, crashed+"-wal", probe+"-wal")
	if got := userNames(t, probe); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("the crashed store has %q, want alice and bob", got)
	}

	r, err := sqlite.Restore(ctx, bak, crashed, restoreTime)
	must(t, err)
	prev := crashed + ".before-restore-20300601T120000Z"
	if r.Path != crashed || r.Previous != prev || !r.PreviousWAL || r.Users != 1 {
		t.Fatalf("restored %+v", r)
	}
	if got := files(t, filepath.Dir(crashed)); !slices.Equal(got, []string{"tokend.db", "tokend.db.before-restore-20300601T120000Z",
		"tokend.db.before-restore-20300601T120000Z-wal", "tokend.db.lock"}) {
		t.Fatalf("after the restore the directory holds %q", got)
	}
	if m := mode(t, crashed); m != 0o600 {
		t.Fatalf("restored database mode %04o", m)
	}
	if got := userNames(t, crashed); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("the restored store has %q, want alice only", got)
	}
	if got := userNames(t, prev); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("the kept previous store has %q, want alice and bob", got)
	}

	// Again at the same second: the previous name is not reused.
	r, err = sqlite.Restore(ctx, bak, crashed, restoreTime)
	must(t, err)
	if r.Previous != prev+"-2" || r.PreviousWAL {
		t.Fatalf("second restore %+v", r)
	}
}

// Restore into a directory that does not exist makes it 0700.
func TestRestoreFresh(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tokend.db")
	withUsers(t, src, "alice")
	bak := filepath.Join(t.TempDir(), "b.db")
	_, err := sqlite.Backup(t.Context(), src, bak, false)
	must(t, err)
	path := filepath.Join(t.TempDir(), "new", "tokend.db")
	r, err := sqlite.Restore(t.Context(), bak, path, restoreTime)
	must(t, err)
	if r.Previous != "" || mode(t, filepath.Dir(path)) != 0o700 {
		t.Fatalf("restored %+v, directory mode %04o", r, mode(t, filepath.Dir(path)))
	}
	if got := userNames(t, path); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("users %q", got)
	}
}

// snapshot is the names and contents of the files of a directory.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range files(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, n))
		must(t, err)
		m[n] = string(b)
	}
	return m
}

func sameFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Restore refuses, changing nothing, while a Store has the database open
// (as tokend serve has), and goes through once it is closed. While the
// lock is held exclusive (a restore), Open and Backup refuse.
func TestRestoreInUse(t *testing.T) {
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "tokend.db")
	withUsers(t, src, "alice")
	bak := filepath.Join(t.TempDir(), "b.db")
	_, err := sqlite.Backup(ctx, src, bak, false)
	must(t, err)

	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	s := open(t, path)
	must(t, s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "h"}))
	// The store's checkpointer may write meanwhile: compare names, then
	// the data.
	was := files(t, dir)
	if _, err := sqlite.Restore(ctx, bak, path, restoreTime); !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("restore under an open store: %v, want ErrInUse", err)
	}
	if got := files(t, dir); !slices.Equal(was, got) {
		t.Fatalf("a refused restore changed the store's files: %q, was %q", got, was)
	}
	must(t, s.Close())
	if got := userNames(t, path); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("after a refused restore the store has %q", got)
	}
	_, err = sqlite.Restore(ctx, bak, path, restoreTime)
	must(t, err)

	f, err := os.Open(path + ".lock")
	must(t, err)
	defer f.Close()
	must(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	if _, err := sqlite.Open(ctx, path); !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("open during a restore: %v, want ErrInUse", err)
	}
	if _, err := sqlite.Backup(ctx, path, filepath.Join(t.TempDir(), "x.db"), false); !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("backup during a restore: %v, want ErrInUse", err)
	}
	must(t, syscall.Flock(int(f.Fd()), syscall.LOCK_UN))
	if got := userNames(t, path); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("users %q", got)
	}
}

// A file that is no tokend backup this build can restore is refused with
// ErrInvalidBackup before anything changes.
func TestRestoreInvalid(t *testing.T) {
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "tokend.db")
	withUsers(t, src, "alice")
	good := filepath.Join(t.TempDir(), "good.db")
	_, err := sqlite.Backup(ctx, src, good, false)
	must(t, err)

	bad := t.TempDir()
	text := filepath.Join(bad, "text")
	must(t, os.WriteFile(text, []byte("not a database, but long enough to have a header"), 0o600))
	empty := filepath.Join(bad, "empty.db")
	execSQL(t, empty, "CREATE TABLE t (x)")
	newer := filepath.Join(bad, "newer.db")
	copyFile(t, good, newer)
	execSQL(t, newer, "PRAGMA user_version = 999")
	foreign := filepath.Join(bad, "foreign.db")
	execSQL(t, foreign, "CREATE TABLE t (x); PRAGMA user_version = 3")
	withWAL := filepath.Join(bad, "wal.db")
	copyFile(t, good, withWAL)
	must(t, os.WriteFile(withWAL+"-wal", []byte("frames"), 0o600))
	corrupt := filepath.Join(bad, "corrupt.db")
	b, err := os.ReadFile(good)
	must(t, err)
	for i := 4096; i < len(b); i++ { // every page past the first
		b[i] ^= 0x5a
	}
	must(t, os.WriteFile(corrupt, b, 0o600))

	dir := t.TempDir()
	path := filepath.Join(dir, "tokend.db")
	withUsers(t, path, "bob")
	was := snapshot(t, dir)
	for _, f := range []string{text, empty, newer, foreign, withWAL, corrupt, filepath.Join(bad, "missing.db")} {
		_, err := sqlite.Restore(ctx, f, path, restoreTime)
		if err == nil || (!errors.Is(err, sqlite.ErrInvalidBackup) && !errors.Is(err, fs.ErrNotExist)) {
			t.Errorf("restore of %s: %v, want ErrInvalidBackup", filepath.Base(f), err)
		}
		if !sameFiles(was, snapshot(t, dir)) {
			t.Fatalf("the refused restore of %s changed the store's files", filepath.Base(f))
		}
	}
	if got := userNames(t, path); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("users %q", got)
	}
}

// execSQL runs q on the SQLite database at path, outside any Store.
func execSQL(t *testing.T, path, q string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	must(t, err)
	_, err = db.Exec(q)
	must(t, err)
	must(t, db.Close())
}

// The lock, -wal and -shm belong to the real file, whichever name reaches
// it: a Store opened through a symbolic link refuses a Restore given the
// real path, and the other way round, changing nothing; a Restore through
// a link (no Store open) replaces the real file and leaves the link a link
// to it.
func TestRestoreThroughSymlink(t *testing.T) {
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "tokend.db")
	withUsers(t, src, "alice")
	bak := filepath.Join(t.TempDir(), "b.db")
	_, err := sqlite.Backup(ctx, src, bak, false)
	must(t, err)

	dir := t.TempDir()
	realDir := filepath.Join(dir, "real")
	must(t, os.Mkdir(realDir, 0o700))
	real := filepath.Join(realDir, "store.db")
	link := filepath.Join(dir, "tokend.db")
	must(t, os.Symlink(filepath.Join("real", "store.db"), link))
	withUsers(t, link, "bob") // created through the link: the real file
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("opening through the link replaced it: %v, %v", fi, err)
	}

	for _, tc := range []struct{ serve, restore string }{{link, real}, {real, link}} {
		s := open(t, tc.serve)
		must(t, s.CreateUser(ctx, store.User{Name: "carol-" + filepath.Base(tc.serve), PasswordHash: "h"}))
		was, wasReal := files(t, dir), files(t, realDir)
		if _, err := sqlite.Restore(ctx, bak, tc.restore, restoreTime); !errors.Is(err, sqlite.ErrInUse) {
			t.Fatalf("restore of %s while %s is open: %v, want ErrInUse", tc.restore, tc.serve, err)
		}
		if got, gotReal := files(t, dir), files(t, realDir); !slices.Equal(was, got) || !slices.Equal(wasReal, gotReal) {
			t.Fatalf("a refused restore changed files: %q %q, was %q %q", got, gotReal, was, wasReal)
		}
		must(t, s.Close())
	}
	if got := userNames(t, real); !slices.Equal(got, []string{"bob", "carol-store.db", "carol-tokend.db"}) {
		t.Fatalf("after refused restores the store has %q", got)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"real", "tokend.db"}) {
		t.Fatalf("files beside the link: %q", got)
	}

	// A crashed server's -wal beside the real file is handled.
	must(t, os.WriteFile(real+"-wal", nil, 0o600))
	r, err := sqlite.Restore(ctx, bak, link, restoreTime)
	must(t, err)
	if r.Path != real || filepath.Dir(r.Previous) != realDir {
		t.Fatalf("restore through the link: path %s, previous %s; want them beside %s", r.Path, r.Previous, real)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("restore replaced the link: %v, %v", fi, err)
	}
	if _, err := os.Stat(real + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the real file's -wal is still there: %v", err)
	}
	if got := userNames(t, link); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("through the link: users %q", got)
	}
	if got := userNames(t, real); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("the real file: users %q", got)
	}
}
