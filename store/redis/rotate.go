package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/tokend/tokend/store"
)

// Rotate implements store.Store as store.CompareAndRotate on the
// family's hash. Each round is two round trips, both on the family's
// slot: readFamilyScript (the family and the server's TIME), then
// casFamilyScript with store.After's result, which writes only if the
// family's generation, token hash and revocation are still those read.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	fam := s.famKey(req.FamilyID)
	return store.CompareAndRotate(ctx, req,
		func(ctx context.Context) (store.Family, time.Time, error) {
			m, now, err := s.readFamily(ctx, fam)
			switch {
			case err != nil:
				return store.Family{}, time.Time{}, wrap("rotate", err)
			case len(m) == 0:
				return store.Family{}, time.Time{}, fmt.Errorf("redis: refresh token: %w", store.ErrNotFound)
			case s.callerClk:
				now = req.Now
			}
			return familyOf(m), now, nil
		},
		func(ctx context.Context, f, g store.Family, o store.Outcome) (store.Family, bool, error) {
			fields := []any{"revoked", enc(g.RevokedAt), "reason", g.RevokeReason}
			if o == store.Rotated {
				fields = []any{"gen", g.Generation, "tok", g.TokenHash, "prev", g.PreviousHash,
					"rotated", enc(g.RotatedAt), "used", enc(g.LastUsedAt), "idle", enc(g.IdleExpiresAt)}
			}
			argv := append([]any{f.Generation, f.TokenHash, enc(f.RevokedAt)}, fields...)
			ok, err := casFamilyScript.Run(ctx, s.rdb, []string{fam}, argv...).Int()
			if err != nil {
				return store.Family{}, false, wrap("rotate", err)
			}
			return g, ok == 1, nil
		})
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
