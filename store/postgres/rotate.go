package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend/store"
)

// The statements of Rotate. qLockFamily finds the family through the
// token (whose family never changes) and locks its row; qToken then reads
// the token in a new snapshot, which sees every rotation committed before
// the lock was granted.
const (
	qLockFamily   = "SELECT " + familyCols + " FROM families WHERE id = (SELECT family_id FROM refresh_tokens WHERE hash = $1) FOR UPDATE"
	qToken        = "SELECT generation, rotated_at, successor FROM refresh_tokens WHERE hash = $1"
	qRotateOld    = "UPDATE refresh_tokens SET rotated_at = $1, successor = $2 WHERE hash = $3"
	qInsertToken  = "INSERT INTO refresh_tokens (hash, family_id, generation, issued_at) VALUES ($1, $2, $3, $4)"
	qUpdateFamily = "UPDATE families SET generation = $1, last_used_at = $2, idle_expires_at = $3 WHERE id = $4"
	qRevokeReuse  = "UPDATE families SET revoked_at = $1, revoke_reason = '" + store.ReasonReuse + "' WHERE id = $2 AND revoked_at IS NULL"
)

// presented is what Rotate reads of the presented token.
type presented struct {
	generation int64
	rotatedAt  pgtype.Timestamptz
	successor  []byte
}

// Rotate implements store.Store as one short transaction: it locks the
// family's row (SELECT … FOR UPDATE), so Rotates of tokens of one family
// take turns however many processes send them, then decides from the
// family's generation and the presented token's row.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	var res store.RotateResult
	var ended error // ErrRevoked or ErrExpired: answered with the family, nothing written
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		f, err := scanFamily(tx.QueryRow(ctx, qLockFamily, req.Old))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		var old presented
		if err := tx.QueryRow(ctx, qToken, req.Old).Scan(&old.generation, &old.rotatedAt, &old.successor); err != nil {
			return err // the token cannot vanish while its family is locked
		}
		outcome, err := decide(f, old, req)
		switch {
		case errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired):
			res, ended = store.RotateResult{Family: f}, err
			return nil
		case err != nil:
			return err
		}
		switch outcome {
		case store.Rotated:
			f.Generation++
			f.LastUsedAt, f.IdleExpiresAt = req.Now, req.IdleExpiresAt
			if f.IdleExpiresAt.After(f.ExpiresAt) {
				f.IdleExpiresAt = f.ExpiresAt
			}
			if _, err := tx.Exec(ctx, qRotateOld, tin(req.Now), req.New, req.Old); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, qInsertToken, req.New, f.ID, f.Generation, tin(req.Now)); err != nil {
				return err // a taken successor: store.ErrExists, all rolled back
			}
			if _, err := tx.Exec(ctx, qUpdateFamily, f.Generation, tin(f.LastUsedAt), tin(f.IdleExpiresAt), f.ID); err != nil {
				return err
			}
		case store.ReuseDetected:
			if _, err := tx.Exec(ctx, qRevokeReuse, tin(req.Now), f.ID); err != nil {
				return err
			}
			f.RevokedAt, f.RevokeReason = req.Now, store.ReasonReuse
		}
		res = store.RotateResult{Outcome: outcome, Family: f}
		return nil
	})
	if err != nil {
		return store.RotateResult{}, dbErr("rotate", err)
	}
	if ended != nil {
		return res, ended
	}
	return res, nil
}

// decide is the rule of store.Store.Rotate, from the locked family and the
// presented token: the token is current while its generation is the
// family's; a retry is the token just before it, rotated to the same
// successor within the grace period (the successor then is current, as
// the family's generation is one more than the presented token's);
// anything else is reuse.
func decide(f store.Family, old presented, req store.RotateRequest) (store.Outcome, error) {
	switch {
	case req.ClientID != "" && f.ClientID != req.ClientID:
		return 0, fmt.Errorf("postgres: refresh token: %w", store.ErrNotFound)
	case !f.RevokedAt.IsZero():
		return 0, fmt.Errorf("postgres: family %s: %w", f.ID, store.ErrRevoked)
	case !req.Now.Before(f.IdleExpiresAt) || !req.Now.Before(f.ExpiresAt):
		return 0, fmt.Errorf("postgres: family %s: %w", f.ID, store.ErrExpired)
	case old.generation == f.Generation:
		return store.Rotated, nil
	case old.generation == f.Generation-1 && bytes.Equal(old.successor, req.New) &&
		old.rotatedAt.Valid && req.Now.Sub(old.rotatedAt.Time) <= req.Grace:
		return store.Repeated, nil
	}
	return store.ReuseDetected, nil
}
