package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store"
)

// The statements of Rotate, each one autocommitted. qReadFamily reads the
// family with the database's clock; qRotate writes a rotation only if the
// family still is at the generation and token it was read with, and not
// revoked since (a logout between the read and the write); qRevoke
// keeps the first revocation.
const (
	qReadFamily = "SELECT " + familyCols + ", now() FROM families WHERE id = $1"
	qRotate     = "UPDATE families SET generation = $2, token_hash = $3, previous_hash = $4, rotated_at = $5, last_used_at = $6, idle_expires_at = $7 " +
		"WHERE id = $1 AND generation = $8 AND token_hash = $9 AND revoked_at IS NULL"
	qRevoke = "UPDATE families SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL"
)

// Rotate implements store.Store as store.CompareAndRotate on the
// family's row: it reads the family and the database's now() in one
// statement, and writes with one UPDATE conditioned on the generation and
// token hash it read and on the family being unrevoked (a rotation), or on
// the family being unrevoked (a reuse). If another Rotate or a revocation
// changed the row in between, the UPDATE matches nothing and Rotate reads
// and decides again.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	if store.Unknown(req.FamilyID) {
		return store.RotateResult{}, unknown("refresh token")
	}
	attempt := 0
	return store.CompareAndRotate(ctx, req,
		func(ctx context.Context) (store.Family, time.Time, error) {
			f, now, err := s.readFamily(ctx, req)
			if err == nil && s.raced != nil {
				s.raced(attempt)
			}
			attempt++
			return f, now, err
		},
		func(ctx context.Context, f, g store.Family, o store.Outcome) (store.Family, bool, error) {
			g = stored(g)
			q, args := qRevoke, []any{f.ID, tin(g.RevokedAt), g.RevokeReason}
			if o == store.Rotated {
				q, args = qRotate, []any{f.ID, g.Generation, g.TokenHash, g.PreviousHash, tin(g.RotatedAt), tin(g.LastUsedAt),
					tin(g.IdleExpiresAt), f.Generation, f.TokenHash}
			}
			tag, err := s.pool.Exec(ctx, q, args...)
			if err != nil {
				return store.Family{}, false, dbErr("rotate", err)
			}
			return g, tag.RowsAffected() == 1, nil
		})
}

// readFamily reads the family req names and the time to judge it at: the
// database's now(), or req.Now with WithCallerClock.
func (s *Store) readFamily(ctx context.Context, req store.RotateRequest) (store.Family, time.Time, error) {
	var now time.Time
	f, err := scanFamily(scanAlso{s.pool.QueryRow(ctx, qReadFamily, req.FamilyID), []any{&now}})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Family{}, time.Time{}, fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Family{}, time.Time{}, dbErr("rotate", err)
	}
	if s.callerClock {
		now = req.Now
	}
	return f, now, nil
}

// stored returns f with its times as the database stores them, to the
// microsecond (pgx truncates), so that Rotate answers what GetFamily
// then reads.
func stored(f store.Family) store.Family {
	for _, t := range []*time.Time{&f.CreatedAt, &f.LastUsedAt, &f.IdleExpiresAt, &f.ExpiresAt, &f.RotatedAt, &f.RevokedAt} {
		*t = t.Truncate(time.Microsecond)
	}
	return f
}

// scanAlso scans a row into the destinations of the caller's Scan
// followed by extra.
type scanAlso struct {
	r     row
	extra []any
}

func (s scanAlso) Scan(dest ...any) error { return s.r.Scan(append(dest, s.extra...)...) }
