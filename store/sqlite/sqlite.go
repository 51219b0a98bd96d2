// Package sqlite is the default store.Store: one SQLite file, through the
// pure-Go modernc.org/sqlite driver (no cgo).
//
// The database runs in WAL mode with synchronous=FULL: a rotation that a
// client has been answered for survives a crash or power loss. Writes go
// through one writer goroutine that commits up to 128 of them in one
// transaction (group commit), each in its own savepoint, so a failing write
// undoes only itself; every caller is answered after the commit. Reads use a
// separate pool of connections.
package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/store"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

//go:embed schema.sql
var schema string

// schemaVersion is stored in PRAGMA user_version.
const schemaVersion = 1

// maxBatch is how many writes one transaction commits at most.
const maxBatch = 128

// Store is a SQLite store.Store. Open it with Open; it is safe for
// concurrent use.
type Store struct {
	w, r   *sql.DB
	ws, rs *stmts // prepared statements of w and r
	ops    chan *op
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
	// batch is the group size; 1 commits every write alone (for the
	// benchmark that measures what grouping buys).
	batch int
}

var _ store.Store = (*Store)(nil)

// op is one write waiting for the writer goroutine.
type op struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

// Options tunes Open. The zero value is the documented default.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "FULL" (default,
	// durable) or "NORMAL" (a power loss may undo the last commits).
	Synchronous string
	// Batch bounds group commit; 1 disables it. Default 128.
	Batch int
}

// Open opens, creating it if needed, the SQLite database at path.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWithOptions(ctx, path, Options{})
}

// OpenWithOptions is Open with Options.
func OpenWithOptions(ctx context.Context, path string, o Options) (*Store, error) {
	sync := strings.ToUpper(o.Synchronous)
	if sync == "" {
		sync = "FULL"
	}
	if sync != "FULL" && sync != "NORMAL" {
		return nil, fmt.Errorf("sqlite: synchronous must be FULL or NORMAL, not %q", o.Synchronous)
	}
	if o.Batch <= 0 {
		o.Batch = maxBatch
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(" + sync + ")", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	s := &Store{w: w, r: r, ws: &stmts{db: w}, rs: &stmts{db: r, lazy: true}, ops: make(chan *op), quit: make(chan struct{}), done: make(chan struct{}), batch: o.Batch}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	if err := s.ws.prepare(ctx, hotWrites...); err != nil {
		s.ws.close()
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	go s.writer()
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	switch {
	case v == schemaVersion:
		return nil
	case v > schemaVersion:
		return fmt.Errorf("sqlite: database schema version %d is newer than this tokend (%d)", v, schemaVersion)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("sqlite: create schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return tx.Commit()
}

// write runs fn in the writer's next transaction and returns its error
// once that transaction has committed (or the commit's error). A caller
// whose ctx ends before its write is taken gets ctx's error and its write
// never runs.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return errors.New("sqlite: store closed")
	}
	return <-o.done
}

// writer is the one goroutine that writes: it groups waiting writes into
// one transaction.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*op, 0, s.batch)
	for {
		select {
		case o := <-s.ops:
			batch = append(batch[:0], o)
		case <-s.quit:
			return
		}
	more:
		for len(batch) < s.batch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// commit runs a batch in one transaction, each write in a savepoint.
func (s *Store) commit(batch []*op) {
	errs := make([]error, len(batch))
	fail := func(err error) {
		for _, o := range batch {
			o.done <- err
		}
	}
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	for i, o := range batch {
		if len(batch) == 1 {
			errs[i] = o.fn(tx)
			continue
		}
		if _, err := s.txExec(ctx, tx, "SAVEPOINT op"); err != nil {
			errs[i] = err
			continue
		}
		if errs[i] = o.fn(tx); errs[i] != nil {
			_, _ = s.txExec(ctx, tx, "ROLLBACK TO op")
		}
		_, _ = s.txExec(ctx, tx, "RELEASE op")
	}
	if len(batch) == 1 && errs[0] != nil {
		_ = tx.Rollback()
		batch[0].done <- errs[0]
		return
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	for i, o := range batch {
		o.done <- errs[i]
	}
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return s.r.PingContext(ctx) }

// Close stops the writer and closes the database.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	s.ws.close()
	s.rs.close()
	return errors.Join(s.w.Close(), s.r.Close())
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

// Times are stored as Unix microseconds, the zero time as NULL.
func tin(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func tout(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64)
}
