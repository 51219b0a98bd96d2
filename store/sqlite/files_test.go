//go:build unix

package sqlite_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/sqlite"
)

// setUmask sets the process's umask for the test. The tests of this
// package do not run in parallel, so no other test creates files
// meanwhile.
func setUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	return fi.Mode().Perm()
}

// The database, its -wal and its -shm are created 0600 and a missing
// directory 0700, whatever the umask lets through.
func TestCreatedPrivate(t *testing.T) {
	for _, umask := range []int{0o022, 0o002, 0} {
		t.Run(fmt.Sprintf("umask %04o", umask), func(t *testing.T) {
			setUmask(t, umask)
			dir := filepath.Join(t.TempDir(), "tokend")
			path := filepath.Join(dir, "tokend.db")
			s := open(t, path)
			defer s.Close()
			must(t, s.CreateUser(t.Context(), store.User{Name: "u", PasswordHash: "h"}))
			if m := mode(t, dir); m != 0o700 {
				t.Errorf("directory mode %04o, want 0700", m)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if m := mode(t, p); m != 0o600 {
					t.Errorf("%s mode %04o, want 0600", filepath.Base(p), m)
				}
			}
		})
	}
}

// An existing directory keeps its mode; only the last level of a missing
// path is created.
func TestDirectories(t *testing.T) {
	setUmask(t, 0o022)
	base := t.TempDir()
	shared := filepath.Join(base, "shared")
	must(t, os.Mkdir(shared, 0o755))
	s := open(t, filepath.Join(shared, "tokend.db"))
	must(t, s.Close())
	if m := mode(t, shared); m != 0o755 {
		t.Fatalf("an existing directory's mode became %04o", m)
	}
	_, err := sqlite.Open(t.Context(), filepath.Join(base, "a", "b", "tokend.db"))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(base, "a", "b")) {
		t.Fatalf("Open under two missing directories: %v, want an error naming the directory", err)
	}
	if _, err := os.Stat(filepath.Join(base, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open created more than the last directory: %v", err)
	}
}

// A database, -wal or -shm file that group or others may read or write is
// refused with ErrPermissions and an error naming the file, its mode and
// the chmod that fixes it; after that chmod, the database opens.
func TestRefusesOpenFiles(t *testing.T) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		for _, m := range []fs.FileMode{0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o666} {
			t.Run(fmt.Sprintf("%s %04o", "tokend.db"+suffix, m), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "tokend.db")
				s := open(t, path)
				must(t, s.CreateUser(t.Context(), store.User{Name: "u", PasswordHash: "h"}))
				must(t, s.Close())
				loose := path + suffix
				if suffix != "" { // a clean Close removes them; as after a crash
					must(t, os.WriteFile(loose, nil, 0o600))
				}
				must(t, os.Chmod(loose, m))

				_, err := sqlite.Open(t.Context(), path)
				if !errors.Is(err, sqlite.ErrPermissions) {
					t.Fatalf("Open: %v, want ErrPermissions", err)
				}
				msg := err.Error()
				for _, want := range []string{fmt.Sprintf("%s has mode %04o", loose, m), "chmod 600 " + loose} {
					if !strings.Contains(msg, want) {
						t.Fatalf("error %q does not say %q", msg, want)
					}
				}

				must(t, os.Chmod(loose, 0o600))
				s = open(t, path)
				defer s.Close()
				if _, err := s.GetUser(t.Context(), "u"); err != nil {
					t.Fatalf("after chmod 600: %v", err)
				}
			})
		}
	}
}

// Every file that is too open is named in one error and one chmod.
func TestRefusesNamesEveryFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokend.db")
	must(t, os.WriteFile(path, nil, 0o600))
	must(t, os.Chmod(path, 0o644))
	must(t, os.WriteFile(path+"-shm", nil, 0o600))
	must(t, os.Chmod(path+"-shm", 0o640))
	_, err := sqlite.Open(t.Context(), path)
	if !errors.Is(err, sqlite.ErrPermissions) || !strings.HasSuffix(err.Error(), "run chmod 600 "+path+" "+path+"-shm") {
		t.Fatalf("Open: %v", err)
	}
}
