package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokend/tokend/store"
)

const (
	familyCols  = "id, client_id, subject, scope, claims, access_ttl, created_at, last_used_at, idle_expires_at, expires_at, generation, revoked_at, revoke_reason"
	familyColsF = "id, f.client_id, f.subject, f.scope, f.claims, f.access_ttl, f.created_at, f.last_used_at, f.idle_expires_at, f.expires_at, f.generation, f.revoked_at, f.revoke_reason"
)

func scanFamily(row interface{ Scan(...any) error }, extra ...any) (store.Family, error) {
	var f store.Family
	var ttl int64
	var created, used, idle, exp, revoked sql.NullInt64
	dest := append([]any{&f.ID, &f.ClientID, &f.Subject, &f.Scope, &f.Claims, &ttl, &created, &used, &idle, &exp, &f.Generation, &revoked, &f.RevokeReason}, extra...)
	if err := row.Scan(dest...); err != nil {
		return f, err
	}
	f.AccessTTL = time.Duration(ttl)
	f.CreatedAt, f.LastUsedAt, f.IdleExpiresAt, f.ExpiresAt, f.RevokedAt = tout(created), tout(used), tout(idle), tout(exp), tout(revoked)
	if len(f.Claims) == 0 {
		f.Claims = nil
	}
	return f, nil
}

// CreateFamily implements store.Store.
func (s *Store) CreateFamily(ctx context.Context, f store.Family, first store.RefreshToken) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, qInsertFamily,
			f.ID, f.ClientID, f.Subject, f.Scope, f.Claims, int64(f.AccessTTL), tin(f.CreatedAt), tin(f.LastUsedAt),
			tin(f.IdleExpiresAt), tin(f.ExpiresAt), tin(f.RevokedAt), f.RevokeReason)
		if err == nil {
			_, err = s.txExec(ctx, tx, qInsertFirstToken,
				first.Hash, f.ID, tin(first.IssuedAt))
		}
		if isConstraint(err) {
			return fmt.Errorf("sqlite: family %s: %w", f.ID, store.ErrExists)
		}
		if err != nil {
			return dbErr("create family", err)
		}
		return nil
	})
}

// GetFamily implements store.Store.
func (s *Store) GetFamily(ctx context.Context, id string) (store.Family, error) {
	f, err := scanFamily(s.readRow(ctx, "SELECT "+familyCols+" FROM families WHERE id = ?", id))
	if err != nil {
		return store.Family{}, s.notFound(err, "family "+id)
	}
	return f, nil
}

// where builds the WHERE clause of a filter.
func where(filter store.FamilyFilter) (string, []any) {
	conds, args := []string{"1"}, []any{}
	if filter.ClientID != "" {
		conds, args = append(conds, "client_id = ?"), append(args, filter.ClientID)
	}
	if filter.Subject != "" {
		conds, args = append(conds, "subject = ?"), append(args, filter.Subject)
	}
	if !filter.ActiveAt.IsZero() {
		at := filter.ActiveAt.UnixMicro()
		conds, args = append(conds, "revoked_at IS NULL AND idle_expires_at > ? AND expires_at > ?"), append(args, at, at)
	}
	return strings.Join(conds, " AND "), args
}

// ListFamilies implements store.Store.
func (s *Store) ListFamilies(ctx context.Context, filter store.FamilyFilter) ([]store.Family, error) {
	cond, args := where(filter)
	return readAll(ctx, s, "list families", "SELECT "+familyCols+" FROM families WHERE "+cond+" ORDER BY created_at, id",
		func(r *sql.Rows) (store.Family, error) { return scanFamily(r) }, args...)
}

// RevokeFamily implements store.Store.
func (s *Store) RevokeFamily(ctx context.Context, id string, at time.Time, reason string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, "UPDATE families SET revoke_reason = CASE WHEN revoked_at IS NULL THEN ? ELSE revoke_reason END, revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
			reason, tin(at), id)
		if err != nil {
			return dbErr("revoke family", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: family %s: %w", id, store.ErrNotFound)
		}
		return nil
	})
}

// RevokeFamilies implements store.Store.
func (s *Store) RevokeFamilies(ctx context.Context, filter store.FamilyFilter, at time.Time, reason string) (int, error) {
	var n int
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		n, err = s.revokeTx(ctx, tx, filter, at, reason)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// revokeTx revokes, in tx, the unrevoked families that match.
func (s *Store) revokeTx(ctx context.Context, tx *sql.Tx, filter store.FamilyFilter, at time.Time, reason string) (int, error) {
	cond, args := where(filter)
	res, err := s.txExec(ctx, tx, "UPDATE families SET revoked_at = ?, revoke_reason = ? WHERE revoked_at IS NULL AND "+cond,
		append([]any{tin(at), reason}, args...)...)
	if err != nil {
		return 0, dbErr("revoke families", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

const tokenCols = "t.hash, t.family_id, t.generation, t.issued_at, t.rotated_at, t.successor"

func scanToken(dst *store.RefreshToken) []any {
	return []any{&dst.Hash, &dst.FamilyID, &dst.Generation, new(sql.NullInt64), new(sql.NullInt64), &dst.Successor}
}

// GetRefreshToken implements store.Store.
func (s *Store) GetRefreshToken(ctx context.Context, hash []byte) (store.RefreshToken, store.Family, error) {
	t, f, err := getToken(func(q string, args ...any) *sql.Row { return s.readRow(ctx, q, args...) }, hash)
	if err != nil {
		return t, f, s.notFound(err, "refresh token")
	}
	return t, f, nil
}

// The queries of the hot path, prepared once at Open.
const (
	qRotateOld        = "UPDATE refresh_tokens SET rotated_at = ?, successor = ? WHERE hash = ? AND rotated_at IS NULL"
	qInsertToken      = "INSERT INTO refresh_tokens (hash, family_id, generation, issued_at) VALUES (?, ?, ?, ?)"
	qUpdateFamily     = "UPDATE families SET generation = ?, last_used_at = ?, idle_expires_at = ? WHERE id = ?"
	qSuccessorState   = "SELECT rotated_at FROM refresh_tokens WHERE hash = ?"
	qRevokeReuse      = "UPDATE families SET revoked_at = ?, revoke_reason = '" + store.ReasonReuse + "' WHERE id = ? AND revoked_at IS NULL"
	qInsertFamily     = "INSERT INTO families (" + familyCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
	qInsertFirstToken = "INSERT INTO refresh_tokens (hash, family_id, generation, issued_at) VALUES (?, ?, 0, ?)"
)

var hotWrites = []string{getTokenQuery, qRotateOld, qInsertToken, qUpdateFamily, qSuccessorState, qRevokeReuse,
	qInsertFamily, qInsertFirstToken, qHeartbeat}

const getTokenQuery = "SELECT f." + familyColsF + ", " + tokenCols + " FROM refresh_tokens t JOIN families f ON f.id = t.family_id WHERE t.hash = ?"

// getToken reads a token and its family through query; its errors are
// Scan's, sql.ErrNoRows for an unknown hash.
func getToken(query func(q string, args ...any) *sql.Row, hash []byte) (store.RefreshToken, store.Family, error) {
	var t store.RefreshToken
	dest := scanToken(&t)
	row := query(getTokenQuery, hash)
	f, err := scanFamily(row, dest...)
	if err != nil {
		return store.RefreshToken{}, store.Family{}, err
	}
	t.IssuedAt, t.RotatedAt = tout(*dest[3].(*sql.NullInt64)), tout(*dest[4].(*sql.NullInt64))
	if len(t.Successor) == 0 {
		t.Successor = nil
	}
	return t, f, nil
}

// Rotate implements store.Store: the read and the compare-and-set run in
// the writer's transaction, so no other write comes between them.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	var res store.RotateResult
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, err = s.rotate(ctx, tx, req)
		return err
	})
	if errors.Is(err, store.ErrUnavailable) {
		return store.RotateResult{}, err // what rotate saw was rolled back
	}
	return res, err
}

func (s *Store) rotate(ctx context.Context, tx *sql.Tx, req store.RotateRequest) (store.RotateResult, error) {
	old, f, err := getToken(func(q string, args ...any) *sql.Row { return s.txQueryRow(ctx, tx, q, args...) }, req.Old)
	if errors.Is(err, sql.ErrNoRows) {
		return store.RotateResult{}, fmt.Errorf("sqlite: refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.RotateResult{}, dbErr("rotate", err)
	}
	switch {
	case req.ClientID != "" && f.ClientID != req.ClientID:
		return store.RotateResult{}, fmt.Errorf("sqlite: refresh token: %w", store.ErrNotFound)
	case !f.RevokedAt.IsZero():
		return store.RotateResult{Family: f}, fmt.Errorf("sqlite: family %s: %w", f.ID, store.ErrRevoked)
	case !req.Now.Before(f.IdleExpiresAt) || !req.Now.Before(f.ExpiresAt):
		return store.RotateResult{Family: f}, fmt.Errorf("sqlite: family %s: %w", f.ID, store.ErrExpired)
	}
	now := req.Now.UnixMicro()
	if old.RotatedAt.IsZero() {
		res, err := s.txExec(ctx, tx, qRotateOld, now, req.New, req.Old)
		if err != nil {
			return store.RotateResult{}, dbErr("rotate", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return store.RotateResult{}, errors.New("sqlite: rotate: token changed under the writer")
		}
		f.Generation++
		if _, err := s.txExec(ctx, tx, qInsertToken, req.New, f.ID, f.Generation, now); err != nil {
			if isConstraint(err) {
				return store.RotateResult{}, fmt.Errorf("sqlite: successor: %w", store.ErrExists)
			}
			return store.RotateResult{}, dbErr("rotate", err)
		}
		f.LastUsedAt, f.IdleExpiresAt = req.Now, req.IdleExpiresAt
		if f.IdleExpiresAt.After(f.ExpiresAt) {
			f.IdleExpiresAt = f.ExpiresAt
		}
		if _, err := s.txExec(ctx, tx, qUpdateFamily,
			f.Generation, now, tin(f.IdleExpiresAt), f.ID); err != nil {
			return store.RotateResult{}, dbErr("rotate", err)
		}
		return store.RotateResult{Outcome: store.Rotated, Family: f}, nil
	}
	if bytes.Equal(old.Successor, req.New) && req.Now.Sub(old.RotatedAt) <= req.Grace {
		var rotated sql.NullInt64
		err := s.txQueryRow(ctx, tx, qSuccessorState, req.New).Scan(&rotated)
		if err == nil && !rotated.Valid {
			return store.RotateResult{Outcome: store.Repeated, Family: f}, nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return store.RotateResult{}, dbErr("rotate", err)
		}
	}
	if _, err := s.txExec(ctx, tx, qRevokeReuse, now, f.ID); err != nil {
		return store.RotateResult{}, dbErr("revoke on reuse", err)
	}
	f.RevokedAt, f.RevokeReason = req.Now, store.ReasonReuse
	return store.RotateResult{Outcome: store.ReuseDetected, Family: f}, nil
}

// DeleteExpired implements store.Store. Tokens go with their family
// (ON DELETE CASCADE); deny-list entries go once expired before before.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	var n int64
	b := before.UnixMicro()
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, "DELETE FROM families WHERE revoked_at < ? OR expires_at <= ? OR idle_expires_at <= ?", b, b, b)
		if err != nil {
			return dbErr("delete expired", err)
		}
		n, _ = res.RowsAffected()
		if _, err := s.txExec(ctx, tx, "DELETE FROM denied_access_tokens WHERE expires_at < ?", b); err != nil {
			return dbErr("delete expired", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
