package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokend/tokend/store"
)

// exec runs one statement as a write and maps constraint violations to
// store.ErrExists and "no row changed" to store.ErrNotFound when asked.
func (s *Store) exec(ctx context.Context, what string, mustChange bool, query string, args ...any) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		ctx := context.WithoutCancel(ctx) // never interrupt the shared batch
		res, err := s.txExec(ctx, tx, query, args...)
		if isConstraint(err) {
			return fmt.Errorf("%s: %w", what, store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, err)
		}
		if n, _ := res.RowsAffected(); mustChange && n == 0 {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		return nil
	})
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// CreateClient implements store.Store.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	return s.exec(ctx, "client "+c.ID, false,
		"INSERT INTO clients (id, secret_hash, grants, scopes, mint, created_at) VALUES (?, ?, ?, ?, ?, ?)",
		c.ID, c.SecretHash, strings.Join(c.Grants, " "), strings.Join(c.Scopes, " "), c.Mint, tin(c.CreatedAt))
}

const clientCols = "id, secret_hash, grants, scopes, mint, created_at"

func scanClient(row interface{ Scan(...any) error }) (store.Client, error) {
	var c store.Client
	var grants, scopes string
	var created sql.NullInt64
	if err := row.Scan(&c.ID, &c.SecretHash, &grants, &scopes, &c.Mint, &created); err != nil {
		return c, err
	}
	c.Grants, c.Scopes, c.CreatedAt = strings.Fields(grants), strings.Fields(scopes), tout(created)
	return c, nil
}

// GetClient implements store.Store.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	c, err := scanClient(s.readRow(ctx, "SELECT "+clientCols+" FROM clients WHERE id = ?", id))
	if err != nil {
		return store.Client{}, notFound(err, "client "+id)
	}
	return c, nil
}

// ListClients implements store.Store.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	return readAll(ctx, s, "list clients", "SELECT "+clientCols+" FROM clients ORDER BY id",
		func(r *sql.Rows) (store.Client, error) { return scanClient(r) })
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, at time.Time) (int, error) {
	// TODO(store): revoke the client's families in the same transaction.
	return 0, s.exec(ctx, "client "+id, true, "DELETE FROM clients WHERE id = ?", id)
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return s.exec(ctx, "user "+u.Name, false,
		"INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)", u.Name, u.PasswordHash, tin(u.CreatedAt))
}

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var created sql.NullInt64
	err := row.Scan(&u.Name, &u.PasswordHash, &created)
	u.CreatedAt = tout(created)
	return u, err
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(s.readRow(ctx, "SELECT name, password_hash, created_at FROM users WHERE name = ?", name))
	if err != nil {
		return store.User{}, notFound(err, "user "+name)
	}
	return u, nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return readAll(ctx, s, "list users", "SELECT name, password_hash, created_at FROM users ORDER BY name",
		func(r *sql.Rows) (store.User, error) { return scanUser(r) })
}

// DeleteUser implements store.Store.
func (s *Store) DeleteUser(ctx context.Context, name string, at time.Time) (int, error) {
	// TODO(store): revoke the user's families in the same transaction.
	return 0, s.exec(ctx, "user "+name, true, "DELETE FROM users WHERE name = ?", name)
}

// errTODO marks the methods the SQLite store does not implement yet.
var errTODO = fmt.Errorf("sqlite: not implemented yet: %w", errors.ErrUnsupported)

// UpdatePasswordHash implements store.Store.
func (s *Store) UpdatePasswordHash(ctx context.Context, name, oldHash, newHash string) error {
	return errTODO
}

// RevokeKey implements store.Store.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error { return errTODO }

// RevokeAccessToken implements store.Store.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return errTODO
}

// AccessTokenRevoked implements store.Store.
func (s *Store) AccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	return false, errTODO
}

// RewriteSecrets implements store.Store.
func (s *Store) RewriteSecrets(ctx context.Context, fn func(kind, name string, value []byte) ([]byte, error)) error {
	return errTODO
}

// CreateKey implements store.Store.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	return s.exec(ctx, "key "+k.ID, false,
		"INSERT INTO keys (id, algorithm, private, created_at, retired_at) VALUES (?, ?, ?, ?, ?)",
		k.ID, k.Algorithm, k.Private, tin(k.CreatedAt), tin(k.RetiredAt))
}

// ListKeys implements store.Store.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	return readAll(ctx, s, "list keys", "SELECT id, algorithm, private, created_at, retired_at FROM keys ORDER BY seq",
		func(r *sql.Rows) (store.Key, error) {
			var k store.Key
			var created, retired sql.NullInt64
			err := r.Scan(&k.ID, &k.Algorithm, &k.Private, &created, &retired)
			k.CreatedAt, k.RetiredAt = tout(created), tout(retired)
			return k, err
		})
}

// RetireKey implements store.Store.
func (s *Store) RetireKey(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		ctx := context.WithoutCancel(ctx) // never interrupt the shared batch
		res, err := s.txExec(ctx, tx, "UPDATE keys SET retired_at = COALESCE(retired_at, ?) WHERE id = ?", tin(at), id)
		if err != nil {
			return fmt.Errorf("sqlite: retire key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("key %s: %w", id, store.ErrNotFound)
		}
		return nil
	})
}

// Secret implements store.Store.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	var out []byte
	err := s.write(ctx, func(tx *sql.Tx) error {
		ctx := context.WithoutCancel(ctx) // never interrupt the shared batch
		if _, err := s.txExec(ctx, tx, "INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", name, value); err != nil {
			return fmt.Errorf("sqlite: secret: %w", err)
		}
		return s.txQueryRow(ctx, tx, "SELECT value FROM secrets WHERE name = ?", name).Scan(&out)
	})
	return out, err
}
