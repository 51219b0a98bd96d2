package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmts caches prepared statements per query text: preparing a statement
// costs more than running it. The writer's cache is filled at Open and
// never lazily, because the writer's only connection is busy in its
// transaction when it needs a statement.
type stmts struct {
	db   *sql.DB
	m    sync.Map // query → *sql.Stmt
	lazy bool
}

func (c *stmts) get(ctx context.Context, q string) *sql.Stmt {
	if st, ok := c.m.Load(q); ok {
		return st.(*sql.Stmt)
	}
	if !c.lazy {
		return nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil // run it unprepared; the error will show there
	}
	if old, loaded := c.m.LoadOrStore(q, st); loaded {
		_ = st.Close()
		return old.(*sql.Stmt)
	}
	return st
}

// prepare fills the cache with queries.
func (c *stmts) prepare(ctx context.Context, queries ...string) error {
	for _, q := range queries {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		c.m.Store(q, st)
	}
	return nil
}

func (c *stmts) close() {
	c.m.Range(func(_, v any) bool { _ = v.(*sql.Stmt).Close(); return true })
}

func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := s.ws.get(ctx, q); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.ws.get(ctx, q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// readAll runs a read query and scans every row with scan.
func readAll[T any](ctx context.Context, s *Store, what, q string, scan func(*sql.Rows) (T, error), args ...any) ([]T, error) {
	var rows *sql.Rows
	var err error
	if st := s.rs.get(ctx, q); st != nil { // q is one of a few texts: the cache stays small
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = s.r.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, s.readErr(what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.readErr(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(what, err)
	}
	return out, nil
}

func (s *Store) readRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := s.rs.get(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.r.QueryRowContext(ctx, q, args...)
}
