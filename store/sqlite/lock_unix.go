//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile is an advisory lock (flock(2)) on the file beside a database
// that names its users: every Store and Backup holds it shared for as
// long as it has the database open, and Restore holds it exclusive while
// it replaces the database. The kernel releases it when its process ends,
// however it ends, so a crashed server leaves no stale lock.
type lockFile struct{ f *os.File }

// lock takes the lock of the database at path (path+".lock", created
// 0600 if missing), shared or exclusive, without waiting. If another
// process (or Store of this one) holds it in the other mode, it fails with
// an error wrapping ErrInUse.
func lock(path string, exclusive bool) (*lockFile, error) {
	f, err := os.OpenFile(path+lockSuffix, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open the lock file: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrInUse
		}
		return nil, fmt.Errorf("sqlite: lock %s: %w", path+lockSuffix, err)
	}
	return &lockFile{f: f}, nil
}

// unlock releases the lock; a nil lock does nothing.
func (l *lockFile) unlock() error {
	if l == nil {
		return nil
	}
	return l.f.Close() // closing the last descriptor releases the flock
}
