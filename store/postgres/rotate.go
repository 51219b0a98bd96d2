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

// rotateAttempts bounds Rotate's reads. A write fails only because
// another one succeeded since the read, and each such loss moves the
// family on for good: after a lost rotation the presented token is no
// longer current (Repeated, which writes nothing, or ReuseDetected);
// after a lost revocation the family is revoked (ErrRevoked). So three
// attempts always decide; the bound only guards against a bug.
const rotateAttempts = 4

// Rotate implements store.Store as a compare-and-set on the family's row,
// with the rule in Go: it reads the family and the database's now() in
// one statement, decides by store.Decide, and writes the family as
// store.After leaves it in one UPDATE conditioned on the generation and
// token hash it read (a rotation) or on the family being unrevoked (a
// reuse). If another Rotate or a revocation changed the row in between,
// the UPDATE matches nothing and Rotate reads and decides again. Repeated
// and the errors write nothing; ErrRevoked and ErrExpired come with the
// family as read.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	for attempt := range rotateAttempts {
		f, now, err := s.readFamily(ctx, req)
		if err != nil {
			return store.RotateResult{}, err
		}
		if s.raced != nil {
			s.raced(attempt)
		}
		outcome, err := store.Decide(f, req, now)
		switch {
		case errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired):
			return store.RotateResult{Family: f}, fmt.Errorf("postgres: rotate: %w", err)
		case err != nil:
			return store.RotateResult{}, fmt.Errorf("postgres: rotate: %w", err)
		case outcome == store.Repeated:
			return store.RotateResult{Outcome: outcome, Family: f}, nil
		}
		g := stored(store.After(f, req, outcome, now))
		var q string
		var args []any
		if outcome == store.Rotated {
			q, args = qRotate, []any{f.ID, g.Generation, g.TokenHash, g.PreviousHash, tin(g.RotatedAt), tin(g.LastUsedAt),
				tin(g.IdleExpiresAt), f.Generation, f.TokenHash}
		} else { // ReuseDetected
			q, args = qRevoke, []any{f.ID, tin(g.RevokedAt), g.RevokeReason}
		}
		tag, err := s.pool.Exec(ctx, q, args...)
		if err != nil {
			return store.RotateResult{}, dbErr("rotate", err)
		}
		if tag.RowsAffected() == 1 {
			return store.RotateResult{Outcome: outcome, Family: g}, nil
		}
	}
	return store.RotateResult{}, fmt.Errorf("postgres: rotate family %s: %w: changed concurrently %d times", req.FamilyID, store.ErrUnavailable, rotateAttempts)
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
