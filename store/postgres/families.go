package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend/store"
)

const familyCols = "id, client_id, subject, scope, claims, access_ttl, created_at, last_used_at, idle_expires_at, expires_at, generation, revoked_at, revoke_reason"

func scanFamily(r row) (store.Family, error) {
	var f store.Family
	var ttl int64
	var created, used, idle, exp, revoked pgtype.Timestamptz
	if err := r.Scan(&f.ID, &f.ClientID, &f.Subject, &f.Scope, &f.Claims, &ttl, &created, &used, &idle, &exp, &f.Generation, &revoked, &f.RevokeReason); err != nil {
		return store.Family{}, err
	}
	f.AccessTTL = time.Duration(ttl)
	f.CreatedAt, f.LastUsedAt, f.IdleExpiresAt, f.ExpiresAt, f.RevokedAt = tout(created), tout(used), tout(idle), tout(exp), tout(revoked)
	if len(f.Claims) == 0 {
		f.Claims = nil
	}
	return f, nil
}

// CreateFamily implements store.Store: the family and its first token in
// one transaction.
func (s *Store) CreateFamily(ctx context.Context, f store.Family, first store.RefreshToken) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO families ("+familyCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12)",
			f.ID, f.ClientID, f.Subject, f.Scope, f.Claims, int64(f.AccessTTL), tin(f.CreatedAt), tin(f.LastUsedAt),
			tin(f.IdleExpiresAt), tin(f.ExpiresAt), tin(f.RevokedAt), f.RevokeReason); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO refresh_tokens (hash, family_id, generation, issued_at) VALUES ($1, $2, 0, $3)",
			first.Hash, f.ID, tin(first.IssuedAt))
		return err
	})
	return dbErr("create family "+f.ID, err)
}

// GetFamily implements store.Store.
func (s *Store) GetFamily(ctx context.Context, id string) (store.Family, error) {
	return readOne(ctx, s, "family "+id, "SELECT "+familyCols+" FROM families WHERE id = $1", scanFamily, id)
}

// where builds the WHERE clause of a filter, its placeholders numbered
// from first.
func where(filter store.FamilyFilter, first int) (string, []any) {
	conds, args := []string{"TRUE"}, []any{}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(first+len(args)-1)
	}
	if filter.ClientID != "" {
		conds = append(conds, "client_id = "+arg(filter.ClientID))
	}
	if filter.Subject != "" {
		conds = append(conds, "subject = "+arg(filter.Subject))
	}
	if !filter.ActiveAt.IsZero() {
		at := arg(filter.ActiveAt)
		conds = append(conds, "revoked_at IS NULL AND idle_expires_at > "+at+" AND expires_at > "+at)
	}
	return strings.Join(conds, " AND "), args
}

// ListFamilies implements store.Store.
func (s *Store) ListFamilies(ctx context.Context, filter store.FamilyFilter) ([]store.Family, error) {
	cond, args := where(filter, 1)
	return readAll(ctx, s, "list families", "SELECT "+familyCols+" FROM families WHERE "+cond+" ORDER BY created_at NULLS FIRST, id",
		scanFamily, args...)
}

// RevokeFamily implements store.Store.
func (s *Store) RevokeFamily(ctx context.Context, id string, at time.Time, reason string) error {
	return s.exec(ctx, "family "+id, true,
		"UPDATE families SET revoke_reason = CASE WHEN revoked_at IS NULL THEN $1 ELSE revoke_reason END, revoked_at = COALESCE(revoked_at, $2) WHERE id = $3",
		reason, tin(at), id)
}

// RevokeFamilies implements store.Store.
func (s *Store) RevokeFamilies(ctx context.Context, filter store.FamilyFilter, at time.Time, reason string) (int, error) {
	n, err := revoke(ctx, s.pool, filter, at, reason)
	if err != nil {
		return 0, dbErr("revoke families", err)
	}
	return n, nil
}

// revoke revokes, through q, the unrevoked families that match.
func revoke(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, filter store.FamilyFilter, at time.Time, reason string) (int, error) {
	cond, args := where(filter, 3)
	tag, err := q.Exec(ctx, "UPDATE families SET revoked_at = $1, revoke_reason = $2 WHERE revoked_at IS NULL AND "+cond,
		append([]any{tin(at), reason}, args...)...)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

const tokenQuery = "SELECT " + familyColsF + ", t.generation, t.issued_at, t.rotated_at, t.successor FROM refresh_tokens t JOIN families f ON f.id = t.family_id WHERE t.hash = $1"

const familyColsF = "f.id, f.client_id, f.subject, f.scope, f.claims, f.access_ttl, f.created_at, f.last_used_at, f.idle_expires_at, f.expires_at, f.generation, f.revoked_at, f.revoke_reason"

// GetRefreshToken implements store.Store.
func (s *Store) GetRefreshToken(ctx context.Context, hash []byte) (store.RefreshToken, store.Family, error) {
	var t store.RefreshToken
	var issued, rotated pgtype.Timestamptz
	f, err := scanFamily(scanAlso{s.pool.QueryRow(ctx, tokenQuery, hash), []any{&t.Generation, &issued, &rotated, &t.Successor}})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.RefreshToken{}, store.Family{}, fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.RefreshToken{}, store.Family{}, dbErr("refresh token", err)
	}
	t.Hash, t.FamilyID, t.IssuedAt, t.RotatedAt = bytes.Clone(hash), f.ID, tout(issued), tout(rotated)
	if len(t.Successor) == 0 {
		t.Successor = nil
	}
	return t, f, nil
}

// scanAlso scans a row into the destinations of the caller's Scan
// followed by extra.
type scanAlso struct {
	r     row
	extra []any
}

func (s scanAlso) Scan(dest ...any) error { return s.r.Scan(append(dest, s.extra...)...) }

// DeleteExpired implements store.Store. Tokens go with their family
// (ON DELETE CASCADE); deny-list entries go once expired before before.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM families WHERE revoked_at < $1 OR expires_at <= $1 OR idle_expires_at <= $1", before)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		_, err = tx.Exec(ctx, "DELETE FROM denied_access_tokens WHERE expires_at < $1", before)
		return err
	})
	if err != nil {
		return 0, dbErr("delete expired", err)
	}
	return int(n), nil
}
