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
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, query, args...)
		if isConstraint(err) {
			return fmt.Errorf("sqlite: %s: %w", what, store.ErrExists)
		}
		if err != nil {
			return dbErr(what, err)
		}
		if n, _ := res.RowsAffected(); mustChange && n == 0 {
			return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
		}
		return nil
	})
}

// CreateClient implements store.Store.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	if err := store.CheckClient(c); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return s.exec(ctx, "client "+c.ID, false,
		"INSERT INTO clients ("+clientCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", clientArgs(c)...)
}

const clientCols = "id, secret_hash, grants, scopes, mint, mint_for, created_at, origins, cookie, redirect_uris, post_logout_redirect_uris, third_party, resources, previous_secret_hash, previous_secret_expires_at"

// clientArgs are c's values in the order of clientCols.
func clientArgs(c store.Client) []any {
	return []any{c.ID, c.SecretHash, strings.Join(c.Grants, " "), strings.Join(c.Scopes, " "), c.Mint, strings.Join(c.MintFor, " "), tin(c.CreatedAt),
		strings.Join(c.Origins, " "), c.Cookie, strings.Join(c.RedirectURIs, " "), strings.Join(c.PostLogoutRedirectURIs, " "),
		c.ThirdParty, strings.Join(c.Resources, " "), c.PreviousSecretHash, tin(c.PreviousSecretExpiresAt)}
}

func scanClient(row interface{ Scan(...any) error }) (store.Client, error) {
	var c store.Client
	var grants, scopes, mintFor, origins, redirects, postLogout, resources string
	var created, prevExpires sql.NullInt64
	if err := row.Scan(&c.ID, &c.SecretHash, &grants, &scopes, &c.Mint, &mintFor, &created, &origins, &c.Cookie,
		&redirects, &postLogout, &c.ThirdParty, &resources, &c.PreviousSecretHash, &prevExpires); err != nil {
		return c, err
	}
	c.Grants, c.Scopes, c.MintFor, c.CreatedAt = strings.Fields(grants), strings.Fields(scopes), strings.Fields(mintFor), tout(created)
	c.PreviousSecretExpiresAt = tout(prevExpires)
	c.Origins = strings.Fields(origins)
	c.RedirectURIs, c.PostLogoutRedirectURIs, c.Resources = strings.Fields(redirects), strings.Fields(postLogout), strings.Fields(resources)
	return c, nil
}

// GetClient implements store.Store.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	c, err := scanClient(s.readRow(ctx, "SELECT "+clientCols+" FROM clients WHERE id = ?", id))
	if err != nil {
		return store.Client{}, s.notFound(err, "client "+id)
	}
	return c, nil
}

// ListClients implements store.Store.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	return readAll(ctx, s, "list clients", "SELECT "+clientCols+" FROM clients ORDER BY id",
		func(r *sql.Rows) (store.Client, error) { return scanClient(r) })
}

// DeleteClient implements store.Store: the client's row, its consents and
// its unredeemed codes go and its families are revoked in one write.
func (s *Store) DeleteClient(ctx context.Context, id string, at time.Time) (int, error) {
	return s.deleteAndRevoke(ctx, "client "+id, "DELETE FROM clients WHERE id = ?", id,
		store.FamilyFilter{ClientID: id}, at, store.ReasonClientDeleted,
		stmt{"DELETE FROM consents WHERE client_id = ?", []any{id}},
		stmt{"DELETE FROM authorization_codes WHERE client_id = ? AND redeemed_at IS NULL", []any{id}})
}

// UpdateClient implements store.Store: the read, the comparison and the
// UPDATE are one write in the writer's transaction.
func (s *Store) UpdateClient(ctx context.Context, prev, next store.Client) error {
	if err := store.CheckUpdate(prev, next); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cur, err := scanClient(s.txQueryRow(ctx, tx, "SELECT "+clientCols+" FROM clients WHERE id = ?", prev.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: client %s: %w", prev.ID, store.ErrNotFound)
		}
		if err != nil {
			return dbErr("update client", err)
		}
		if !cur.Equal(prev) {
			return fmt.Errorf("sqlite: client %s: %w", prev.ID, store.ErrConflict)
		}
		args := clientArgs(next)
		if _, err := s.txExec(ctx, tx, "UPDATE clients SET ("+clientCols+") = (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?",
			append(args, prev.ID)...); err != nil {
			return dbErr("update client", err)
		}
		return nil
	})
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := store.CheckID(u.Name); err != nil {
		return fmt.Errorf("sqlite: user name: %w", err)
	}
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
		return store.User{}, s.notFound(err, "user "+name)
	}
	return u, nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return readAll(ctx, s, "list users", "SELECT name, password_hash, created_at FROM users ORDER BY name",
		func(r *sql.Rows) (store.User, error) { return scanUser(r) })
}

// UpdatePasswordHash implements store.Store: the compare and the set are
// one UPDATE in the writer's transaction.
func (s *Store) UpdatePasswordHash(ctx context.Context, name, oldHash, newHash string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?", newHash, name, oldHash)
		if err != nil {
			return dbErr("update password hash", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var one int
		err = s.txQueryRow(ctx, tx, "SELECT 1 FROM users WHERE name = ?", name).Scan(&one)
		switch {
		case err == nil:
			return fmt.Errorf("sqlite: user %s: password hash: %w", name, store.ErrConflict)
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite: user %s: %w", name, store.ErrNotFound)
		}
		return dbErr("update password hash", err)
	})
}

// DeleteUser implements store.Store: the user's row and consents go, the
// user's sessions end and the families of the subject are revoked in one
// write.
func (s *Store) DeleteUser(ctx context.Context, name string, at time.Time) (int, error) {
	return s.deleteAndRevoke(ctx, "user "+name, "DELETE FROM users WHERE name = ?", name,
		store.FamilyFilter{Subject: name}, at, store.ReasonUserDeleted,
		stmt{"DELETE FROM consents WHERE subject = ?", []any{name}},
		stmt{"UPDATE sessions SET ended_at = ? WHERE subject = ? AND ended_at IS NULL", []any{tin(at), name}})
}

// stmt is a statement and its arguments.
type stmt struct {
	q    string
	args []any
}

// deleteAndRevoke deletes one row and, if there was one, revokes the
// families that match and runs also, in the same write.
func (s *Store) deleteAndRevoke(ctx context.Context, what, del, id string, filter store.FamilyFilter, at time.Time, reason string, also ...stmt) (int, error) {
	var n int
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, del, id)
		if err != nil {
			return dbErr("delete "+what, err)
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
		}
		for _, st := range also {
			if _, err := s.txExec(ctx, tx, st.q, st.args...); err != nil {
				return dbErr("delete "+what, err)
			}
		}
		n, err = s.revokeTx(ctx, tx, filter, at, reason)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Access-token deny-list.

// RevokeAccessToken implements store.Store.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if err := store.CheckID(jti); err != nil {
		return fmt.Errorf("sqlite: jti: %w", err)
	}
	return s.exec(ctx, "revoke access token", false,
		"INSERT INTO denied_access_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
		jti, expiresAt.UnixMicro())
}

// AccessTokenRevoked implements store.Store.
func (s *Store) AccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	var one int
	err := s.readRow(ctx, "SELECT 1 FROM denied_access_tokens WHERE jti = ?", jti).Scan(&one)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	}
	return false, s.readErr("access token revoked", err)
}
