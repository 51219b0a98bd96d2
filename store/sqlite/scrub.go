package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/tokend/tokend/store"
)

// scrubAttempt bounds how long one checkpoint of Scrub waits for other
// connections' reads, holding off their writes meanwhile, and is how long
// it then lets those writes in before the next attempt.
const scrubAttempt = 200 * time.Millisecond

// Scrub implements store.Scrubber. Overwriting a row leaves its old bytes
// behind: in the page's free space, in pages moved or freed as the table
// grew, and in the frames of the write-ahead log (the -wal file) until
// they are overwritten. SQLite's secure_delete would zero only what is
// deleted while it is on, not the copies left before, so Scrub rewrites
// the files instead, on the writer's connection (other writes of this
// Store wait meanwhile; those of other processes wait up to their busy
// timeout, and fail after it):
//
//  1. VACUUM rebuilds the database from its live rows into fresh pages,
//     written to the log;
//  2. wal_checkpoint(TRUNCATE) copies the log into the database file,
//     truncates that file to its new size, and truncates the log to zero
//     bytes. The -shm file holds only an index of the log (page numbers),
//     never a row.
//
// The checkpoint cannot truncate the log while another connection (a
// running server's) is reading a snapshot that needs it, nor overwrite
// the pages of the database file that such a snapshot reads, and while it
// waits for such reads it holds off every writer. A server's reads last
// milliseconds, so Scrub retries until ctx ends, each attempt waiting up
// to scrubAttempt for them and then pausing as long, so that the writers
// of a running server are delayed, never starved; then it returns an
// error wrapping store.ErrUnavailable that names the files that may still
// hold old values. VACUUM takes about as long as copying the database,
// and needs as much free space again.
func (s *Store) Scrub(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: scrub: %w", unavailable(err))
	}
	defer conn.Close()
	var file string
	if err := conn.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		return fmt.Errorf("sqlite: scrub: %w", unavailable(err))
	}
	if _, err := conn.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("sqlite: scrub: VACUUM did not finish, so %s and %s-wal may still hold old values: %w", file, file, unavailable(err))
	}
	var busyTimeout int // the connection's, in ms: put back once done
	if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busyTimeout); err != nil {
		return fmt.Errorf("sqlite: scrub: %w", unavailable(err))
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout))
	}()
	for {
		wait := scrubAttempt
		if dl, ok := ctx.Deadline(); ok {
			wait = max(0, min(wait, time.Until(dl)))
		}
		var busy, frames, copied int
		_, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds()))
		if err == nil {
			err = conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &copied)
		}
		switch {
		case err != nil:
			return fmt.Errorf("sqlite: scrub: the checkpoint did not finish, so %s and %s-wal may still hold old values: %w", file, file, unavailable(err))
		case busy == 0:
			return nil
		}
		pause := time.NewTimer(scrubAttempt)
		select {
		case <-pause.C:
		case <-ctx.Done():
			pause.Stop()
			return fmt.Errorf("sqlite: scrub: another connection (a running server?) kept reading an older snapshot, so %s and %s-wal (%d pages) may still hold old values: %w: %w",
				file, file, frames, store.ErrUnavailable, ctx.Err())
		}
	}
}

var _ store.Scrubber = (*Store)(nil)
