package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tokend/tokend/store"
)

// maxAttempts bounds Rotate's read, decide and compare-and-set rounds.
// Each failed round means another call changed the family (a rotation or
// a revocation), which a family's one legitimate holder rarely does twice
// at once.
const maxAttempts = 16

// Rotate implements store.Store. Each round is two round trips, both on
// the family's slot: readFamilyScript (the family and the server's TIME),
// store.Decide in Go, then casFamilyScript with store.After's result,
// which writes only if the family's generation, token hash and revocation
// are still those read. A Repeated, or an error Decide returns, writes
// nothing. When the compare-and-set fails, Rotate reads and decides
// again, up to maxAttempts rounds; after that it returns an error
// wrapping store.ErrConflict and store.ErrUnavailable (nothing changed;
// the server answers 503 and the client may retry).
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	fam := s.famKey(req.FamilyID)
	for range maxAttempts {
		m, now, err := s.readFamily(ctx, fam)
		if err != nil {
			return store.RotateResult{}, wrap("rotate", err)
		}
		if len(m) == 0 {
			return store.RotateResult{}, fmt.Errorf("redis: refresh token: %w", store.ErrNotFound)
		}
		f := familyOf(m)
		if s.callerClk {
			now = req.Now
		}
		o, err := store.Decide(f, req, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return store.RotateResult{}, fmt.Errorf("redis: %w", err)
		case err != nil:
			return store.RotateResult{Family: f}, fmt.Errorf("redis: %w", err)
		case o == store.Repeated:
			return store.RotateResult{Outcome: o, Family: f}, nil
		}
		g := store.After(f, req, o, now)
		var fields []any
		if o == store.Rotated {
			fields = []any{"gen", g.Generation, "tok", g.TokenHash, "prev", g.PreviousHash,
				"rotated", enc(g.RotatedAt), "used", enc(g.LastUsedAt), "idle", enc(g.IdleExpiresAt)}
		} else {
			fields = []any{"revoked", enc(g.RevokedAt), "reason", g.RevokeReason}
		}
		argv := append([]any{f.Generation, f.TokenHash, enc(f.RevokedAt), s.pxat(f.ExpiresAt)}, fields...)
		ok, err := casFamilyScript.Run(ctx, s.rdb, []string{fam}, argv...).Int()
		if err != nil {
			return store.RotateResult{}, wrap("rotate", err)
		}
		if ok == 1 {
			return store.RotateResult{Outcome: o, Family: g}, nil
		}
	}
	return store.RotateResult{}, fmt.Errorf("redis: rotate family %q: %d attempts: %w: %w", req.FamilyID, maxAttempts, store.ErrConflict, store.ErrUnavailable)
}

// readFamily runs readFamilyScript: the family hash at fam (empty if
// there is none) and the Redis server's clock, to the microsecond.
func (s *Store) readFamily(ctx context.Context, fam string) (map[string]string, time.Time, error) {
	v, err := readFamilyScript.Run(ctx, s.rdb, []string{fam}).Slice()
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(v) != 2 {
		return nil, time.Time{}, fmt.Errorf("read family: unexpected reply of %d elements", len(v))
	}
	clock, _ := v[0].([]any)
	if len(clock) != 2 {
		return nil, time.Time{}, fmt.Errorf("read family: unexpected TIME reply %v", v[0])
	}
	sec, err1 := strconv.ParseInt(fmt.Sprint(clock[0]), 10, 64)
	usec, err2 := strconv.ParseInt(fmt.Sprint(clock[1]), 10, 64)
	if err1 != nil || err2 != nil {
		return nil, time.Time{}, fmt.Errorf("read family: unexpected TIME reply %v", v[0])
	}
	return pairs(v[1]), time.Unix(sec, usec*1000).UTC(), nil
}

// pairs turns a script's HGETALL reply into a map.
func pairs(v any) map[string]string {
	list, _ := v.([]any)
	m := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		m[k] = val
	}
	return m
}
