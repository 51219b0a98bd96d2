package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrPermissions reports a database file that group or others may read or
// write. The database holds the private signing keys, so Open refuses it;
// the error names the files, their modes and the chmod that fixes them.
var ErrPermissions = errors.New("sqlite: database file readable or writable by group or others")

// The modes of what Open creates, before the umask (which can only narrow
// them).
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// prepareFiles makes the database at path its owner's alone before SQLite
// opens it: it creates a missing parent directory (that level only) with
// dirMode and a missing database file with fileMode, from which SQLite
// copies the mode of the -wal and -shm files it creates. Then it refuses,
// with ErrPermissions, a database, -wal or -shm file whose mode lets group
// or others read or write it. It never changes the mode of anything that
// exists.
func prepareFiles(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("sqlite: create the database's directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("sqlite: create the database: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("sqlite: create the database: %w", err)
	}
	var open, modes []string
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if m := fi.Mode().Perm(); m&0o066 != 0 {
			open = append(open, p)
			modes = append(modes, fmt.Sprintf("%s has mode %04o", p, m))
		}
	}
	if len(open) > 0 {
		return fmt.Errorf("%w: %s; run chmod 600 %s", ErrPermissions, strings.Join(modes, ", "), strings.Join(open, " "))
	}
	return nil
}

// resolvePath is the real path of the database at path: absolute, clean,
// with every symbolic link resolved (filepath.EvalSymlinks), so that
// whichever name a process opens the database by (a link to it, or the
// file itself), its lock, -wal and -shm files are the same, beside the
// real file. For a missing file it resolves the directory (if that
// exists) and keeps the name.
func resolvePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("sqlite: %w", err)
	}
	for range 40 { // links to links, as the kernel allows (ELOOP)
		real, err := filepath.EvalSymlinks(abs)
		if err == nil {
			return real, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("sqlite: resolve %s: %w", abs, err)
		}
		dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
		if errors.Is(err, fs.ErrNotExist) {
			return abs, nil
		}
		if err != nil {
			return "", fmt.Errorf("sqlite: resolve %s: %w", filepath.Dir(abs), err)
		}
		abs = filepath.Join(dir, filepath.Base(abs))
		// A link to a missing file: the file it would create.
		target, err := os.Readlink(abs)
		if err != nil {
			return abs, nil
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		abs = filepath.Clean(target)
	}
	return "", fmt.Errorf("sqlite: resolve %s: too many levels of symbolic links", path)
}
