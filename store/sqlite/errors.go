package sqlite

import (
	"database/sql"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/tokend/tokend/store"
)

// transient reports an SQLite error that says the database cannot take
// the request now, not that the request is wrong: a full disk
// (SQLITE_FULL), an I/O error (SQLITE_IOERR and its extended codes), a lock
// held too long (SQLITE_BUSY, SQLITE_LOCKED), a database that cannot be
// written or opened (SQLITE_READONLY, SQLITE_CANTOPEN), or no memory
// (SQLITE_NOMEM).
func transient(err error) bool {
	var e *sqlite3.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff { // the primary code of an extended one
	case sqlite3lib.SQLITE_FULL, sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED,
		sqlite3lib.SQLITE_READONLY, sqlite3lib.SQLITE_CANTOPEN, sqlite3lib.SQLITE_NOMEM:
		return true
	}
	return false
}

// dbErr wraps err, an error of the database met while doing what, and
// store.ErrUnavailable if err is transient. The original error stays in
// the chain.
func dbErr(what string, err error) error {
	if transient(err) {
		return fmt.Errorf("sqlite: %s: %w: %w", what, store.ErrUnavailable, err)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// unavailable returns err wrapping store.ErrUnavailable.
func unavailable(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// readErr is dbErr for the read path, where a closed store shows as
// database/sql's own errors: after Close, every failure is
// store.ErrUnavailable.
func (s *Store) readErr(what string, err error) error {
	if s.closed.Load() && !transient(err) {
		return fmt.Errorf("sqlite: %s: store closed: %w: %w", what, store.ErrUnavailable, err)
	}
	return dbErr(what, err)
}

// notFound is readErr that maps sql.ErrNoRows to store.ErrNotFound.
func (s *Store) notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	return s.readErr(what, err)
}

// isConstraint reports a UNIQUE or PRIMARY KEY violation.
func isConstraint(err error) bool {
	var e *sqlite3.Error
	if !errors.As(err, &e) {
		return false
	}
	c := e.Code()
	return c == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE
}
