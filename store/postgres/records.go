package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend/store"
)

// exec runs one statement; with mustChange, no row changed is
// store.ErrNotFound.
func (s *Store) exec(ctx context.Context, what string, mustChange bool, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return dbErr(what, err)
	}
	if mustChange && tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

// readOne reads one row with scan; no row is store.ErrNotFound.
func readOne[T any](ctx context.Context, s *Store, what, query string, scan func(row) (T, error), args ...any) (T, error) {
	v, err := scan(s.pool.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	return v, dbErr(what, err)
}

// readAll reads every row of a query with scan.
func readAll[T any](ctx context.Context, s *Store, what, query string, scan func(row) (T, error), args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, dbErr(what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, dbErr(what, err)
	}
	return out, nil
}

// unknown is the answer to a lookup of an identifier that breaks
// store.IDRule (store.Unknown), without asking the database: no row can
// have it, and PostgreSQL would refuse some (NUL, invalid UTF-8) with an
// error. The identifier is not quoted.
func unknown(what string) error { return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound) }

// CreateClient implements store.Store.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	if err := store.CheckClient(c); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return s.exec(ctx, "client "+c.ID, false,
		"INSERT INTO clients ("+clientCols+") VALUES ("+clientParams+")", clientArgs(c)...)
}

const (
	clientCols   = "id, secret_hash, grants, scopes, mint, mint_for, created_at, origins, cookie, redirect_uris, post_logout_redirect_uris, third_party, resources, previous_secret_hash, previous_secret_expires_at"
	clientParams = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15"
)

// clientArgs are c's values in the order of clientCols.
func clientArgs(c store.Client) []any {
	return []any{c.ID, c.SecretHash, strings.Join(c.Grants, " "), strings.Join(c.Scopes, " "), c.Mint, strings.Join(c.MintFor, " "), tin(c.CreatedAt),
		strings.Join(c.Origins, " "), c.Cookie, strings.Join(c.RedirectURIs, " "), strings.Join(c.PostLogoutRedirectURIs, " "),
		c.ThirdParty, strings.Join(c.Resources, " "), c.PreviousSecretHash, tin(c.PreviousSecretExpiresAt)}
}

func scanClient(r row) (store.Client, error) {
	var c store.Client
	var grants, scopes, mintFor, origins, redirects, postLogout, resources string
	var created, prevExpires pgtype.Timestamptz
	if err := r.Scan(&c.ID, &c.SecretHash, &grants, &scopes, &c.Mint, &mintFor, &created, &origins, &c.Cookie,
		&redirects, &postLogout, &c.ThirdParty, &resources, &c.PreviousSecretHash, &prevExpires); err != nil {
		return store.Client{}, err
	}
	c.PreviousSecretExpiresAt = tout(prevExpires)
	c.Grants, c.Scopes, c.MintFor, c.CreatedAt = strings.Fields(grants), strings.Fields(scopes), strings.Fields(mintFor), tout(created)
	c.Origins = strings.Fields(origins)
	c.RedirectURIs, c.PostLogoutRedirectURIs, c.Resources = strings.Fields(redirects), strings.Fields(postLogout), strings.Fields(resources)
	return c, nil
}

// GetClient implements store.Store.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	if store.Unknown(id) {
		return store.Client{}, unknown("client")
	}
	return readOne(ctx, s, "client "+id, "SELECT "+clientCols+" FROM clients WHERE id = $1", scanClient, id)
}

// ListClients implements store.Store.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	return readAll(ctx, s, "list clients", "SELECT "+clientCols+" FROM clients ORDER BY id", scanClient)
}

// DeleteClient implements store.Store: the client's row, its consents and
// its unredeemed codes go and its families are revoked in one
// transaction.
func (s *Store) DeleteClient(ctx context.Context, id string, at time.Time) (int, error) {
	if store.Unknown(id) {
		return 0, unknown("client")
	}
	return s.deleteAndRevoke(ctx, "client "+id, "DELETE FROM clients WHERE id = $1", id,
		store.FamilyFilter{ClientID: id}, at, store.ReasonClientDeleted,
		stmt{"DELETE FROM consents WHERE client_id = $1", []any{id}},
		stmt{"DELETE FROM authorization_codes WHERE client_id = $1 AND redeemed_at IS NULL", []any{id}})
}

// UpdateClient implements store.Store: the row is read FOR UPDATE,
// compared and written in one transaction, so that a concurrent update
// from any handle waits for it and then finds the client changed.
func (s *Store) UpdateClient(ctx context.Context, prev, next store.Client) error {
	if err := store.CheckUpdate(prev, next); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanClient(tx.QueryRow(ctx, "SELECT "+clientCols+" FROM clients WHERE id = $1 FOR UPDATE", prev.ID))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: client %s: %w", prev.ID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !cur.Equal(prev) {
			return fmt.Errorf("postgres: client %s: %w", prev.ID, store.ErrConflict)
		}
		_, err = tx.Exec(ctx, "UPDATE clients SET ("+clientCols+") = ("+clientParams+") WHERE id = $1", clientArgs(next)...)
		return err
	})
	return dbErr("update client", err)
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := store.CheckID(u.Name); err != nil {
		return fmt.Errorf("postgres: user name: %w", err)
	}
	return s.exec(ctx, "user "+u.Name, false,
		"INSERT INTO users (name, password_hash, created_at) VALUES ($1, $2, $3)", u.Name, u.PasswordHash, tin(u.CreatedAt))
}

func scanUser(r row) (store.User, error) {
	var u store.User
	var created pgtype.Timestamptz
	if err := r.Scan(&u.Name, &u.PasswordHash, &created); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = tout(created)
	return u, nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	if store.Unknown(name) {
		return store.User{}, unknown("user")
	}
	return readOne(ctx, s, "user "+name, "SELECT name, password_hash, created_at FROM users WHERE name = $1", scanUser, name)
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return readAll(ctx, s, "list users", "SELECT name, password_hash, created_at FROM users ORDER BY name", scanUser)
}

// UpdatePasswordHash implements store.Store: the compare and the set are
// one UPDATE; when it changes nothing, a second look tells an unknown user
// from a changed hash.
func (s *Store) UpdatePasswordHash(ctx context.Context, name, oldHash, newHash string) error {
	if store.Unknown(name) {
		return unknown("user")
	}
	tag, err := s.pool.Exec(ctx, "UPDATE users SET password_hash = $1 WHERE name = $2 AND password_hash = $3", newHash, name, oldHash)
	if err != nil {
		return dbErr("update password hash", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)", name).Scan(&exists); err != nil {
		return dbErr("update password hash", err)
	}
	if exists {
		return fmt.Errorf("postgres: user %s: password hash: %w", name, store.ErrConflict)
	}
	return fmt.Errorf("postgres: user %s: %w", name, store.ErrNotFound)
}

// DeleteUser implements store.Store: the user's row and consents go, the
// user's sessions end and the families of the subject are revoked in one
// transaction.
func (s *Store) DeleteUser(ctx context.Context, name string, at time.Time) (int, error) {
	if store.Unknown(name) {
		return 0, unknown("user")
	}
	return s.deleteAndRevoke(ctx, "user "+name, "DELETE FROM users WHERE name = $1", name,
		store.FamilyFilter{Subject: name}, at, store.ReasonUserDeleted,
		stmt{"DELETE FROM consents WHERE subject = $1", []any{name}},
		stmt{"UPDATE sessions SET ended_at = $1 WHERE subject = $2 AND ended_at IS NULL", []any{tin(at), name}})
}

// stmt is a statement and its arguments.
type stmt struct {
	q    string
	args []any
}

// deleteAndRevoke deletes one row and, if there was one, revokes the
// families that match and runs also in the same transaction.
func (s *Store) deleteAndRevoke(ctx context.Context, what, del, id string, filter store.FamilyFilter, at time.Time, reason string, also ...stmt) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, del, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
		}
		for _, st := range also {
			if _, err := tx.Exec(ctx, st.q, st.args...); err != nil {
				return err
			}
		}
		n, err = revoke(ctx, tx, filter, at, reason)
		return err
	})
	if err != nil {
		return 0, dbErr("delete "+what, err)
	}
	return n, nil
}

// CreateKey implements store.Store.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	return s.exec(ctx, "key "+k.ID, false, insertKey, keyArgs(k)...)
}

const (
	keyCols   = "id, algorithm, private, use, created_at, not_before, retired_at, revoked_at"
	insertKey = "INSERT INTO keys (" + keyCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
	// activeKey selects the newest active key of a use ($1).
	activeKey = " FROM keys WHERE use = $1 AND retired_at IS NULL AND revoked_at IS NULL ORDER BY seq DESC LIMIT 1"
)

func keyArgs(k store.Key) []any {
	return []any{k.ID, k.Algorithm, k.Private, k.Use, tin(k.CreatedAt), tin(k.NotBefore), tin(k.RetiredAt), tin(k.RevokedAt)}
}

func scanKey(r row) (store.Key, error) {
	var k store.Key
	var created, notBefore, retired, revoked pgtype.Timestamptz
	err := r.Scan(&k.ID, &k.Algorithm, &k.Private, &k.Use, &created, &notBefore, &retired, &revoked)
	k.CreatedAt, k.NotBefore, k.RetiredAt, k.RevokedAt = tout(created), tout(notBefore), tout(retired), tout(revoked)
	return k, err
}

// CreateKeyIfNone implements store.Store: one transaction that first locks
// the keys table against every other writer (SHARE ROW EXCLUSIVE conflicts
// with itself and with INSERT and UPDATE, not with reads), then looks for
// an active key of k.Use and inserts k if there is none.
func (s *Store) CreateKeyIfNone(ctx context.Context, k store.Key) (store.Key, error) {
	var out store.Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE keys IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		got, err := scanKey(tx.QueryRow(ctx, "SELECT "+keyCols+activeKey, k.Use))
		switch {
		case err == nil:
			out = got
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(ctx, insertKey, keyArgs(k)...); err != nil {
			return err
		}
		out = k
		return nil
	})
	if err != nil {
		return store.Key{}, dbErr("key "+k.ID, err)
	}
	return out, nil
}

// RotateKey implements store.Store: one transaction that locks the keys
// table against other writers, checks the newest active key of k.Use,
// retires the active keys of k.Use and stores k.
func (s *Store) RotateKey(ctx context.Context, k store.Key, prev string) error {
	conflict := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE keys IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		var newest string
		err := tx.QueryRow(ctx, "SELECT id"+activeKey, k.Use).Scan(&newest)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if newest != prev {
			conflict = true
			return nil
		}
		if _, err := tx.Exec(ctx, "UPDATE keys SET retired_at = $1 WHERE use = $2 AND retired_at IS NULL AND revoked_at IS NULL", tin(k.NotBefore), k.Use); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, insertKey, keyArgs(k)...)
		return err
	})
	if err != nil {
		return dbErr("key "+k.ID, err)
	}
	if conflict {
		return fmt.Errorf("postgres: rotate key: the newest active key is not %q: %w", prev, store.ErrConflict)
	}
	return nil
}

// ListKeys implements store.Store.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	return readAll(ctx, s, "list keys", "SELECT "+keyCols+" FROM keys ORDER BY seq", scanKey)
}

// RetireKey implements store.Store.
func (s *Store) RetireKey(ctx context.Context, id string, at time.Time) error {
	if store.Unknown(id) {
		return unknown("key")
	}
	return s.exec(ctx, "key "+id, true, "UPDATE keys SET retired_at = COALESCE(retired_at, $1) WHERE id = $2", tin(at), id)
}

// RevokeKey implements store.Store. The right-hand sides of an UPDATE read
// the row as it was, so retired_at is set only by the revocation that sets
// revoked_at.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	if store.Unknown(id) {
		return unknown("key")
	}
	return s.exec(ctx, "key "+id, true,
		"UPDATE keys SET retired_at = CASE WHEN revoked_at IS NULL THEN COALESCE(retired_at, $1) ELSE retired_at END, revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
		tin(at), id)
}

// Secret implements store.Store: an INSERT that does nothing if the name
// is taken, then a SELECT. Under READ COMMITTED the INSERT waits for a
// concurrent one to commit and the SELECT, a new snapshot, sees the winner.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if value == nil {
		value = []byte{} // an empty value, not NULL
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, value); err != nil {
		return nil, dbErr("secret", err)
	}
	var out []byte
	if err := s.pool.QueryRow(ctx, "SELECT value FROM secrets WHERE name = $1", name).Scan(&out); err != nil {
		return nil, dbErr("secret", err)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// RewriteSecrets implements store.Store: it locks every key and secret
// row, passes them through fn and writes them back in one transaction. A
// failing or panicking fn rolls it back.
func (s *Store) RewriteSecrets(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, error)) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, t := range []struct{ kind, read, update string }{
			{store.KindKey, "SELECT id, private FROM keys ORDER BY seq FOR UPDATE", "UPDATE keys SET private = $1 WHERE id = $2"},
			{store.KindSecret, "SELECT name, value FROM secrets ORDER BY name FOR UPDATE", "UPDATE secrets SET value = $1 WHERE name = $2"},
		} {
			rows, err := tx.Query(ctx, t.read)
			if err != nil {
				return err
			}
			vals, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pair, error) {
				var p pair
				err := r.Scan(&p.name, &p.value)
				return p, err
			})
			if err != nil {
				return err
			}
			for _, v := range vals {
				out, err := fn(t.kind, v.name, v.value)
				if err != nil {
					return fmt.Errorf("%s %s: %w", t.kind, v.name, err)
				}
				if out == nil {
					out = []byte{}
				}
				if _, err := tx.Exec(ctx, t.update, out, v.name); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return dbErr("rewrite secrets", err)
}

type pair struct {
	name  string
	value []byte
}

// RevokeAccessToken implements store.Store.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if err := store.CheckID(jti); err != nil {
		return fmt.Errorf("postgres: jti: %w", err)
	}
	return s.exec(ctx, "revoke access token", false,
		"INSERT INTO denied_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(denied_access_tokens.expires_at, excluded.expires_at)",
		jti, expiresAt)
}

// AccessTokenRevoked implements store.Store.
func (s *Store) AccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	if store.Unknown(jti) {
		return false, nil
	}
	var denied bool
	err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM denied_access_tokens WHERE jti = $1)", jti).Scan(&denied)
	if err != nil {
		return false, dbErr("access token revoked", err)
	}
	return denied, nil
}
