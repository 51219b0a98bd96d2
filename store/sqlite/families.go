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

const familyCols = "id, client_id, subject, scope, claims, access_ttl, created_at, last_used_at, idle_expires_at, expires_at, generation, revoked_at, revoke_reason, token_hash, previous_hash, rotated_at, session_id, audience"

func scanFamily(row interface{ Scan(...any) error }) (store.Family, error) {
	var f store.Family
	var ttl int64
	var audience string
	var created, used, idle, exp, revoked, rotated sql.NullInt64
	if err := row.Scan(&f.ID, &f.ClientID, &f.Subject, &f.Scope, &f.Claims, &ttl, &created, &used, &idle, &exp, &f.Generation, &revoked, &f.RevokeReason,
		&f.TokenHash, &f.PreviousHash, &rotated, &f.SessionID, &audience); err != nil {
		return f, err
	}
	f.Audience = strings.Fields(audience)
	f.AccessTTL = time.Duration(ttl)
	f.CreatedAt, f.LastUsedAt, f.IdleExpiresAt, f.ExpiresAt, f.RevokedAt = tout(created), tout(used), tout(idle), tout(exp), tout(revoked)
	f.RotatedAt = tout(rotated)
	if len(f.Claims) == 0 {
		f.Claims = nil
	}
	if len(f.PreviousHash) == 0 {
		f.PreviousHash = nil
	}
	return f, nil
}

// CreateFamily implements store.Store.
func (s *Store) CreateFamily(ctx context.Context, f store.Family) error {
	if err := store.CheckFamily(f); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.insertFamily(ctx, tx, f) })
}

// insertFamily inserts f in tx: store.ErrExists if its ID is taken.
func (s *Store) insertFamily(ctx context.Context, tx *sql.Tx, f store.Family) error {
	_, err := s.txExec(ctx, tx, qInsertFamily,
		f.ID, f.ClientID, f.Subject, f.Scope, f.Claims, int64(f.AccessTTL), tin(f.CreatedAt), tin(f.LastUsedAt),
		tin(f.IdleExpiresAt), tin(f.ExpiresAt), f.Generation, tin(f.RevokedAt), f.RevokeReason, f.TokenHash, f.PreviousHash, tin(f.RotatedAt),
		f.SessionID, strings.Join(f.Audience, " "))
	if isConstraint(err) {
		return fmt.Errorf("sqlite: family %s: %w", f.ID, store.ErrExists)
	}
	if err != nil {
		return dbErr("create family", err)
	}
	return nil
}

// GetFamily implements store.Store.
func (s *Store) GetFamily(ctx context.Context, id string) (store.Family, error) {
	f, err := scanFamily(s.readRow(ctx, qGetFamily, id))
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
	if filter.SessionID != "" {
		conds, args = append(conds, "session_id = ?"), append(args, filter.SessionID)
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

// The queries of the hot path, prepared once at Open.
const (
	qGetFamily    = "SELECT " + familyCols + " FROM families WHERE id = ?"
	qUpdateFamily = "UPDATE families SET generation = ?, token_hash = ?, previous_hash = ?, rotated_at = ?, last_used_at = ?, idle_expires_at = ? WHERE id = ?"
	qRevokeReuse  = "UPDATE families SET revoked_at = ?, revoke_reason = '" + store.ReasonReuse + "' WHERE id = ? AND revoked_at IS NULL"
	qInsertFamily = "INSERT INTO families (" + familyCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	qLegacyToken  = "SELECT family_id, generation FROM legacy_tokens WHERE hash = ?"
)

var hotWrites = []string{qGetFamily, qUpdateFamily, qRevokeReuse, qInsertFamily, qHeartbeat}

// Rotate implements store.Store: the family is read, decided by
// store.Decide on the caller's clock, and written in the writer's
// transaction, so no other write comes between.
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
	return store.CompareAndRotate(ctx, req,
		func(ctx context.Context) (store.Family, time.Time, error) {
			f, err := scanFamily(s.txQueryRow(ctx, tx, qGetFamily, req.FamilyID))
			if errors.Is(err, sql.ErrNoRows) {
				return store.Family{}, time.Time{}, fmt.Errorf("sqlite: refresh token: %w", store.ErrNotFound)
			}
			if err != nil {
				return store.Family{}, time.Time{}, dbErr("rotate", err)
			}
			return f, req.Now, nil
		},
		func(ctx context.Context, _, f store.Family, o store.Outcome) (store.Family, bool, error) {
			var err error
			if o == store.Rotated {
				_, err = s.txExec(ctx, tx, qUpdateFamily, f.Generation, f.TokenHash, f.PreviousHash, tin(f.RotatedAt),
					tin(f.LastUsedAt), tin(f.IdleExpiresAt), f.ID)
			} else {
				_, err = s.txExec(ctx, tx, qRevokeReuse, tin(f.RevokedAt), f.ID)
			}
			if err != nil {
				return store.Family{}, false, dbErr("rotate", err)
			}
			return f, true, nil // the writer's transaction held the family since the read
		})
}

// LegacyToken implements store.LegacyTokens: the family and generation of
// a refresh token issued before schema version 3 that was its family's
// current or previous token when the database was upgraded. Its rows go
// with the family.
func (s *Store) LegacyToken(ctx context.Context, hash []byte) (familyID string, generation int64, err error) {
	if err := s.readRow(ctx, qLegacyToken, hash).Scan(&familyID, &generation); err != nil {
		return "", 0, s.notFound(err, "refresh token")
	}
	return familyID, generation, nil
}

// DeleteExpired implements store.Store. Legacy tokens go with their
// family (ON DELETE CASCADE); deny-list entries go once expired before
// before, authorization codes once expired by then, sessions once ended
// before it or expired by then.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	var n int64
	b := before.UnixMicro()
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, "DELETE FROM families WHERE revoked_at < ? OR expires_at <= ? OR idle_expires_at <= ?", b, b, b)
		if err != nil {
			return dbErr("delete expired", err)
		}
		n, _ = res.RowsAffected()
		for _, q := range []string{
			"DELETE FROM denied_access_tokens WHERE expires_at < ?1",
			"DELETE FROM authorization_codes WHERE expires_at IS NULL OR expires_at <= ?1",
			"DELETE FROM sessions WHERE ended_at < ?1 OR expires_at IS NULL OR expires_at <= ?1",
		} {
			if _, err := s.txExec(ctx, tx, q, b); err != nil {
				return dbErr("delete expired", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
