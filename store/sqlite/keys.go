package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend/store"
)

// CreateKey implements store.Store.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	return s.exec(ctx, "key "+k.ID, false, insertKey, keyArgs(k)...)
}

const (
	keyCols   = "id, algorithm, private, use, created_at, not_before, retired_at, revoked_at"
	insertKey = "INSERT INTO keys (" + keyCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
	// activeKey selects the newest active key of a use (the argument).
	activeKey = " FROM keys WHERE use = ? AND retired_at IS NULL AND revoked_at IS NULL ORDER BY seq DESC LIMIT 1"
)

func keyArgs(k store.Key) []any {
	return []any{k.ID, k.Algorithm, k.Private, k.Use, tin(k.CreatedAt), tin(k.NotBefore), tin(k.RetiredAt), tin(k.RevokedAt)}
}

func scanKey(r interface{ Scan(...any) error }) (store.Key, error) {
	var k store.Key
	var created, notBefore, retired, revoked sql.NullInt64
	err := r.Scan(&k.ID, &k.Algorithm, &k.Private, &k.Use, &created, &notBefore, &retired, &revoked)
	k.CreatedAt, k.NotBefore, k.RetiredAt, k.RevokedAt = tout(created), tout(notBefore), tout(retired), tout(revoked)
	return k, err
}

// CreateKeyIfNone implements store.Store: the read and the insert are one
// write of the writer's transaction, which no other write interleaves.
func (s *Store) CreateKeyIfNone(ctx context.Context, k store.Key) (store.Key, error) {
	var out store.Key
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		got, err := scanKey(s.txQueryRow(ctx, tx, "SELECT "+keyCols+activeKey, k.Use))
		switch {
		case err == nil:
			out = got
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return dbErr("create key if none", err)
		}
		_, err = s.txExec(ctx, tx, insertKey, keyArgs(k)...)
		if isConstraint(err) {
			return fmt.Errorf("sqlite: key %s: %w", k.ID, store.ErrExists)
		}
		if err != nil {
			return dbErr("create key if none", err)
		}
		out = k
		return nil
	})
	if err != nil {
		return store.Key{}, err
	}
	return out, nil
}

// RotateKey implements store.Store, in the writer's transaction.
func (s *Store) RotateKey(ctx context.Context, k store.Key, prev string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var newest string
		err := s.txQueryRow(ctx, tx, "SELECT id"+activeKey, k.Use).Scan(&newest)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return dbErr("rotate key", err)
		}
		if newest != prev {
			return fmt.Errorf("sqlite: rotate key: the newest active key is %q, not %q: %w", newest, prev, store.ErrConflict)
		}
		if _, err := s.txExec(ctx, tx, "UPDATE keys SET retired_at = ? WHERE use = ? AND retired_at IS NULL AND revoked_at IS NULL", tin(k.NotBefore), k.Use); err != nil {
			return dbErr("rotate key", err)
		}
		_, err = s.txExec(ctx, tx, insertKey, keyArgs(k)...)
		if isConstraint(err) {
			return fmt.Errorf("sqlite: key %s: %w", k.ID, store.ErrExists)
		}
		if err != nil {
			return dbErr("rotate key", err)
		}
		return nil
	})
}

// ListKeys implements store.Store.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	return readAll(ctx, s, "list keys", "SELECT "+keyCols+" FROM keys ORDER BY seq",
		func(r *sql.Rows) (store.Key, error) { return scanKey(r) })
}

// RetireKey implements store.Store.
func (s *Store) RetireKey(ctx context.Context, id string, at time.Time) error {
	return s.exec(ctx, "key "+id, true, "UPDATE keys SET retired_at = COALESCE(retired_at, ?) WHERE id = ?", tin(at), id)
}

// RevokeKey implements store.Store. The right-hand sides of an UPDATE
// read the row as it was, so retired_at is set only by the revocation that
// sets revoked_at.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	return s.exec(ctx, "key "+id, true,
		"UPDATE keys SET retired_at = CASE WHEN revoked_at IS NULL THEN COALESCE(retired_at, ?) ELSE retired_at END, revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
		tin(at), tin(at), id)
}

// Secret implements store.Store.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if value == nil {
		value = []byte{} // an empty value, not NULL
	}
	var out []byte
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, "INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", name, value); err != nil {
			return dbErr("secret", err)
		}
		if err := s.txQueryRow(ctx, tx, "SELECT value FROM secrets WHERE name = ?", name).Scan(&out); err != nil {
			return dbErr("secret", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RewriteSecrets implements store.Store. It reads, calls fn and writes in
// one write of the writer's transaction: other writes wait while fn runs,
// and fn must not write to the store (it would wait for itself). A panic in
// fn is raised again in the caller's goroutine, after nothing was written.
func (s *Store) RewriteSecrets(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, error)) error {
	var panicked any
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		defer func() {
			if p := recover(); p != nil {
				panicked, err = p, errors.New("sqlite: rewrite secrets: fn panicked")
			}
		}()
		for _, t := range []struct{ kind, read, update string }{
			{store.KindKey, "SELECT id, private FROM keys ORDER BY seq", "UPDATE keys SET private = ? WHERE id = ?"},
			{store.KindSecret, "SELECT name, value FROM secrets ORDER BY name", "UPDATE secrets SET value = ? WHERE name = ?"},
		} {
			vals, err := readPairs(ctx, tx, t.read)
			if err != nil {
				return dbErr("rewrite secrets", err)
			}
			for _, v := range vals {
				out, err := fn(t.kind, v.name, v.value)
				if err != nil {
					return fmt.Errorf("sqlite: rewrite secrets: %s %s: %w", t.kind, v.name, err)
				}
				if _, err := s.txExec(ctx, tx, t.update, out, v.name); err != nil {
					return dbErr("rewrite secrets", err)
				}
			}
		}
		return nil
	})
	if panicked != nil {
		panic(panicked)
	}
	return err
}

type pair struct {
	name  string
	value []byte
}

// readPairs reads every row of a two-column query in tx.
func readPairs(ctx context.Context, tx *sql.Tx, q string) ([]pair, error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pair
	for rows.Next() {
		var p pair
		if err := rows.Scan(&p.name, &p.value); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
