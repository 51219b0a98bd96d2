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
