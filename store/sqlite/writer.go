package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tokend/tokend/store"
)

// writeFn is one write. It runs in the writer's transaction, which it
// shares with other callers' writes, so its ctx carries the caller's values
// but never its cancellation: an ended caller must not interrupt the batch.
type writeFn func(ctx context.Context, tx *sql.Tx) error

// op is one write waiting for the writer goroutine.
type op struct {
	ctx  context.Context // the caller's, without its cancellation
	fn   writeFn
	done chan error // buffered: the writer never waits for a caller
}

// errClosed answers the writes to a closed store.
var errClosed = fmt.Errorf("sqlite: store closed: %w", store.ErrUnavailable)

// write runs fn in the writer's next transaction and returns its error
// once that transaction has committed (or the commit's error). A caller
// whose ctx ends before its write is taken gets ctx's error and its write
// never runs. Once taken, the write runs to its commit, but a caller whose
// ctx ends first stops waiting for it (the writer may be waiting for a
// lock another process holds): it gets ctx's error, wrapping
// store.ErrUnavailable if ctx's deadline passed, and its write may still
// commit.
func (s *Store) write(ctx context.Context, fn writeFn) error {
	o, err := s.enqueue(ctx, fn)
	if err != nil {
		return ctxErr(err)
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("sqlite: no commit before the caller's context ended (the write may still commit): %w", ctxErr(ctx.Err()))
	}
}

// ctxErr is err wrapping store.ErrUnavailable if it is a passed deadline:
// the store did not answer in time.
func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return unavailable(err)
	}
	return err
}

// enqueue hands fn to the writer and returns its op, whose done channel
// will carry the write's result.
func (s *Store) enqueue(ctx context.Context, fn writeFn) (*op, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	o := &op{ctx: context.WithoutCancel(ctx), fn: fn, done: make(chan error, 1)}
	select {
	case s.ops <- o:
		return o, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.quit:
		return nil, errClosed
	}
}

// writer is the one goroutine that writes: it groups waiting writes into
// one transaction. Between two, it finishes a checkpoint when the
// checkpointer asks.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*op, 0, s.batch)
	for {
		select {
		case o := <-s.ops:
			batch = append(batch[:0], o)
		case reply := <-s.ckptReq:
			reply <- checkpoint(s.w) // between transactions: see checkpointer
			continue
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
		s.signalCommit()
	}
}

// commit runs a batch in one transaction, each write in a savepoint unless
// it is alone, and answers every caller once the transaction has ended.
//
// A write's own failure (store.ErrExists, store.ErrNotFound, ...) undoes
// that write only. A failure of the database itself (an error wrapping
// store.ErrUnavailable: a full disk, an I/O error, ...) or of a savepoint
// ends the whole transaction instead: SQLite may already have rolled it
// back, and a write run after that would commit on its own. The batch is
// rolled back and every caller in it gets that error, which wraps
// store.ErrUnavailable: nothing was written, and a retry may succeed.
func (s *Store) commit(batch []*op) {
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		answer(batch, unavailable(dbErr("begin", err)))
		return
	}
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		// Alone, a write needs no savepoint: its failure, its own or the
		// database's, rolls the transaction back.
		if errs[0] = batch[0].fn(batch[0].ctx, tx); errs[0] != nil {
			_ = tx.Rollback()
			if isUnavailable(errs[0]) {
				errs[0] = unavailable(errs[0])
			}
			batch[0].done <- errs[0]
			return
		}
	} else {
		for i, o := range batch {
			var abort error
			if errs[i], abort = s.inSavepoint(ctx, tx, o); abort != nil {
				_ = tx.Rollback()
				answer(batch, unavailable(abort))
				return
			}
		}
	}
	// A Commit that fails leaves no transaction open: the driver rolls
	// back, so the next batch begins afresh.
	if err := tx.Commit(); err != nil {
		answer(batch, unavailable(dbErr("commit", err)))
		return
	}
	for i, o := range batch {
		o.done <- errs[i]
	}
}

// inSavepoint runs one write of a batch in a savepoint. It returns the
// write's error, and abort if the transaction cannot go on.
func (s *Store) inSavepoint(ctx context.Context, tx *sql.Tx, o *op) (err, abort error) {
	if _, err := s.txExec(ctx, tx, "SAVEPOINT op"); err != nil {
		return nil, dbErr("savepoint", err)
	}
	err = o.fn(o.ctx, tx)
	if isUnavailable(err) {
		return err, err
	}
	if err != nil {
		if _, rerr := s.txExec(ctx, tx, "ROLLBACK TO op"); rerr != nil {
			return err, dbErr("rollback to savepoint", rerr)
		}
	}
	if _, rerr := s.txExec(ctx, tx, "RELEASE op"); rerr != nil {
		return err, dbErr("release savepoint", rerr)
	}
	return err, nil
}

// answer gives every write of the batch the same error.
func answer(batch []*op, err error) {
	for _, o := range batch {
		o.done <- err
	}
}

// isUnavailable reports an error that wraps store.ErrUnavailable or is a
// transient SQLite error not wrapped yet.
func isUnavailable(err error) bool {
	return err != nil && (errors.Is(err, store.ErrUnavailable) || transient(err))
}
