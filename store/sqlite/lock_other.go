//go:build !unix

package sqlite

import (
	"errors"
	"fmt"
)

// lockFile is a lock of the database's users. Without flock(2) there is
// none: a Store or Backup takes nothing, and Restore refuses to run, since
// it could not tell whether a server has the database open.
type lockFile struct{}

func lock(path string, exclusive bool) (*lockFile, error) {
	if exclusive {
		return nil, fmt.Errorf("sqlite: restore needs flock(2) to know that no server has %s open: %w", path, errors.ErrUnsupported)
	}
	return nil, nil
}

func (l *lockFile) unlock() error { return nil }
