package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tokend/tokend/store"
)

// RotateForUpdate is the alternative to Rotate's compare-and-set that the
// benchmark compares it with: the same rule in one short transaction that
// locks the family's row (SELECT … FOR UPDATE), decides and writes.
func RotateForUpdate(ctx context.Context, s *Store, req store.RotateRequest) (store.RotateResult, error) {
	var res store.RotateResult
	var ended error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var now = req.Now
		f, err := scanFamily(scanAlso{tx.QueryRow(ctx, qReadFamily+" FOR UPDATE", req.FamilyID), []any{&now}})
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if s.callerClock {
			now = req.Now
		}
		outcome, err := store.Decide(f, req, now)
		switch {
		case errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired):
			res, ended = store.RotateResult{Family: f}, err
			return nil
		case err != nil:
			return err
		case outcome == store.Repeated:
			res = store.RotateResult{Outcome: outcome, Family: f}
			return nil
		}
		g := stored(store.After(f, req, outcome, now))
		if outcome == store.Rotated {
			_, err = tx.Exec(ctx, qRotate, f.ID, g.Generation, g.TokenHash, g.PreviousHash, tin(g.RotatedAt), tin(g.LastUsedAt),
				tin(g.IdleExpiresAt), f.Generation, f.TokenHash)
		} else {
			_, err = tx.Exec(ctx, qRevoke, f.ID, tin(g.RevokedAt), g.RevokeReason)
		}
		res = store.RotateResult{Outcome: outcome, Family: g}
		return err
	})
	if err != nil {
		return store.RotateResult{}, dbErr("rotate", err)
	}
	return res, ended
}

// SchemaVersion is the schema version this build migrates databases to.
var SchemaVersion = len(migrations)
