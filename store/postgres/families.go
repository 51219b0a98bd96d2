package postgres

import (
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

const familyCols = "id, client_id, subject, scope, claims, access_ttl, created_at, last_used_at, idle_expires_at, expires_at, generation, token_hash, previous_hash, rotated_at, revoked_at, revoke_reason, session_id, audience"

func scanFamily(r row) (store.Family, error) {
	var f store.Family
	var ttl int64
	var audience string
	var created, used, idle, exp, rotated, revoked pgtype.Timestamptz
	if err := r.Scan(&f.ID, &f.ClientID, &f.Subject, &f.Scope, &f.Claims, &ttl, &created, &used, &idle, &exp, &f.Generation,
		&f.TokenHash, &f.PreviousHash, &rotated, &revoked, &f.RevokeReason, &f.SessionID, &audience); err != nil {
		return store.Family{}, err
	}
	f.AccessTTL = time.Duration(ttl)
	f.Audience = strings.Fields(audience)
	f.CreatedAt, f.LastUsedAt, f.IdleExpiresAt, f.ExpiresAt = tout(created), tout(used), tout(idle), tout(exp)
	f.RotatedAt, f.RevokedAt = tout(rotated), tout(revoked)
	if len(f.Claims) == 0 {
		f.Claims = nil
	}
	if len(f.PreviousHash) == 0 {
		f.PreviousHash = nil
	}
	return f, nil
}

// The statements of CreateFamily. qCreateFamily stores the times as
// given; qCreateFamilyNow stores every time at its distance from
// f.CreatedAt after now() (an interval, 0 for created_at; NULL stays
// NULL): f.Rebase(now()) in the INSERT itself, with no round trip to read
// the database's clock first.
const (
	qCreateFamily    = "INSERT INTO families (" + familyCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
	qCreateFamilyNow = "INSERT INTO families (" + familyCols + ") VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval, " +
		"now() + $8::interval, now() + $9::interval, now() + $10::interval, $11, $12, $13, now() + $14::interval, now() + $15::interval, $16, $17, $18)"
)

// CreateFamily implements store.Store: one INSERT. With the database's
// clock (the default) the family is rebased onto now() (see
// store.Family.Rebase), unless f.CreatedAt is zero, which leaves nothing
// to rebase from: then, as with WithCallerClock, its times are stored as
// given. Durations are kept to the microsecond.
func (s *Store) CreateFamily(ctx context.Context, f store.Family) error {
	if err := store.CheckFamily(f); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	q, at := qCreateFamily, func(t time.Time) any { return tin(t) }
	if !s.callerClock && !f.CreatedAt.IsZero() {
		q, at = qCreateFamilyNow, func(t time.Time) any {
			return pgtype.Interval{Microseconds: t.Sub(f.CreatedAt).Microseconds(), Valid: !t.IsZero()}
		}
	}
	_, err := s.pool.Exec(ctx, q, f.ID, f.ClientID, f.Subject, f.Scope, f.Claims, int64(f.AccessTTL),
		at(f.CreatedAt), at(f.LastUsedAt), at(f.IdleExpiresAt), at(f.ExpiresAt), f.Generation,
		f.TokenHash, f.PreviousHash, at(f.RotatedAt), at(f.RevokedAt), f.RevokeReason, f.SessionID, strings.Join(f.Audience, " "))
	return dbErr("create family "+f.ID, err)
}

// GetFamily implements store.Store.
func (s *Store) GetFamily(ctx context.Context, id string) (store.Family, error) {
	if store.Unknown(id) {
		return store.Family{}, unknown("family")
	}
	return readOne(ctx, s, "family "+id, "SELECT "+familyCols+" FROM families WHERE id = $1", scanFamily, id)
}

// LegacyToken implements store.LegacyTokens: the family and generation of
// a refresh token issued before schema version 3 that was its family's
// current or previous token when the database was upgraded.
func (s *Store) LegacyToken(ctx context.Context, hash []byte) (familyID string, generation int64, err error) {
	err = s.pool.QueryRow(ctx, "SELECT family_id, generation FROM legacy_tokens WHERE hash = $1", hash).Scan(&familyID, &generation)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return "", 0, dbErr("legacy refresh token", err)
	}
	return familyID, generation, nil
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
	if filter.SessionID != "" {
		conds = append(conds, "session_id = "+arg(filter.SessionID))
	}
	if !filter.ActiveAt.IsZero() {
		at := arg(filter.ActiveAt)
		conds = append(conds, "revoked_at IS NULL AND idle_expires_at > "+at+" AND expires_at > "+at)
	}
	return strings.Join(conds, " AND "), args
}

// ListFamilies implements store.Store.
func (s *Store) ListFamilies(ctx context.Context, filter store.FamilyFilter) ([]store.Family, error) {
	if store.Unknown(filter.ClientID, filter.Subject, filter.SessionID) {
		return nil, nil
	}
	cond, args := where(filter, 1)
	return readAll(ctx, s, "list families", "SELECT "+familyCols+" FROM families WHERE "+cond+" ORDER BY created_at NULLS FIRST, id",
		scanFamily, args...)
}

// RevokeFamily implements store.Store.
func (s *Store) RevokeFamily(ctx context.Context, id string, at time.Time, reason string) error {
	if store.Unknown(id) {
		return unknown("family")
	}
	return s.exec(ctx, "family "+id, true,
		"UPDATE families SET revoke_reason = CASE WHEN revoked_at IS NULL THEN $1 ELSE revoke_reason END, revoked_at = COALESCE(revoked_at, $2) WHERE id = $3",
		reason, tin(at), id)
}

// RevokeFamilies implements store.Store.
func (s *Store) RevokeFamilies(ctx context.Context, filter store.FamilyFilter, at time.Time, reason string) (int, error) {
	if store.Unknown(filter.ClientID, filter.Subject, filter.SessionID) {
		return 0, nil
	}
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

// DeleteExpired implements store.Store: a family is one row, which goes
// once the family has ended; deny-list entries go once expired before
// before, authorization codes once expired by then, sessions once ended
// before it or expired by then.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM families WHERE revoked_at < $1 OR expires_at <= $1 OR idle_expires_at <= $1", before)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		for _, q := range []string{
			"DELETE FROM denied_access_tokens WHERE expires_at < $1",
			"DELETE FROM authorization_codes WHERE expires_at IS NULL OR expires_at <= $1",
			"DELETE FROM sessions WHERE ended_at < $1 OR expires_at IS NULL OR expires_at <= $1",
		} {
			if _, err := tx.Exec(ctx, q, before); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, dbErr("delete expired", err)
	}
	return int(n), nil
}
