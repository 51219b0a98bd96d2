package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// SchemaVersion is the schema version this build migrates databases to.
var SchemaVersion = len(migrations)

// Test hooks into the writer.

// WriterPragma runs "PRAGMA p" on the writer's connection, between
// transactions: "max_page_count = 1" caps the database at its current
// size, so that a write needing a new page fails with SQLITE_FULL as on a
// full disk; "query_only = 1" makes every write fail with SQLITE_READONLY.
func (s *Store) WriterPragma(ctx context.Context, p string) error {
	_, err := s.w.ExecContext(ctx, "PRAGMA "+p)
	return err
}

// CommitBatch runs each statement as one write of a single batch, as if
// they had been waiting for the writer together, and returns their
// errors. It runs in the caller's goroutine; the writer goroutine waits for
// the connection meanwhile.
func (s *Store) CommitBatch(stmts ...string) []error {
	batch := make([]*op, len(stmts))
	for i, q := range stmts {
		batch[i] = &op{ctx: context.Background(), done: make(chan error, 1), fn: func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return dbErr(fmt.Sprintf("statement %d", i), err)
			}
			return nil
		}}
	}
	s.commit(batch)
	errs := make([]error, len(batch))
	for i, o := range batch {
		errs[i] = <-o.done
	}
	return errs
}
