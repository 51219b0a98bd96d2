package redis

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
)

// familyFields are a family's hash fields and values, for HSET.
func familyFields(f store.Family) []any {
	return []any{"id", f.ID, "client", f.ClientID, "subject", f.Subject, "scope", f.Scope, "claims", f.Claims,
		"attl", int64(f.AccessTTL), "created", enc(f.CreatedAt), "used", enc(f.LastUsedAt),
		"idle", enc(f.IdleExpiresAt), "exp", enc(f.ExpiresAt), "gen", f.Generation,
		"revoked", enc(f.RevokedAt), "reason", f.RevokeReason}
}

func familyOf(m map[string]string) store.Family {
	attl, _ := strconv.ParseInt(m["attl"], 10, 64)
	gen, _ := strconv.ParseInt(m["gen"], 10, 64)
	f := store.Family{ID: m["id"], ClientID: m["client"], Subject: m["subject"], Scope: m["scope"],
		AccessTTL: time.Duration(attl), CreatedAt: dec(m["created"]), LastUsedAt: dec(m["used"]),
		IdleExpiresAt: dec(m["idle"]), ExpiresAt: dec(m["exp"]), Generation: gen,
		RevokedAt: dec(m["revoked"]), RevokeReason: m["reason"]}
	if v := m["claims"]; v != "" {
		f.Claims = []byte(v)
	}
	return f
}

// CreateFamily implements store.Store. The token index entry is claimed
// first (SET NX); the family, its token and its index entries are then
// written by one script, and the claim is released if the family ID was
// taken.
func (s *Store) CreateFamily(ctx context.Context, f store.Family, first store.RefreshToken) error {
	h := hex.EncodeToString(first.Hash)
	idx := s.idxKey(h)
	args := &goredis.SetArgs{Mode: "NX"}
	if !f.ExpiresAt.IsZero() {
		args.ExpireAt = f.ExpiresAt.Add(s.margin)
	}
	ok, err := s.rdb.SetArgs(ctx, idx, f.ID, *args).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return wrap("create family", err)
	}
	if ok != "OK" {
		return fmt.Errorf("redis: refresh token: %w", store.ErrExists)
	}
	fam := s.famKey(f.ID)
	argv := []any{f.ID, h, s.pxat(f.ExpiresAt)}
	argv = append(argv, familyFields(f)...)
	argv = append(argv, "|", "gen", 0, "issued", enc(first.IssuedAt), "rotated", "", "succ", "")
	n, err := createFamilyScript.Run(ctx, s.rdb, []string{fam, s.tokKey(f.ID, h), s.toksKey(f.ID),
		s.p + "fams", s.p + "cfams:" + f.ClientID, s.p + "sfams:" + f.Subject}, argv...).Int()
	if err == nil && n == 1 {
		return nil
	}
	// The family was not written: release the claim (it is ours, SET NX).
	_ = s.rdb.Del(context.WithoutCancel(ctx), idx).Err()
	if err != nil {
		return wrap("create family", err)
	}
	return fmt.Errorf("redis: family %q: %w", f.ID, store.ErrExists)
}

// GetFamily implements store.Store.
func (s *Store) GetFamily(ctx context.Context, id string) (store.Family, error) {
	m, err := s.rdb.HGetAll(ctx, s.famKey(id)).Result()
	if err != nil {
		return store.Family{}, wrap("get family", err)
	}
	if len(m) == 0 {
		return store.Family{}, fmt.Errorf("redis: family %q: %w", id, store.ErrNotFound)
	}
	return familyOf(m), nil
}

func matches(f store.Family, filter store.FamilyFilter) bool {
	return (filter.ClientID == "" || f.ClientID == filter.ClientID) &&
		(filter.Subject == "" || f.Subject == filter.Subject) &&
		(filter.ActiveAt.IsZero() || f.Active(filter.ActiveAt))
}

// familySet is the narrowest family index that covers filter.
func (s *Store) familySet(filter store.FamilyFilter) string {
	switch {
	case filter.ClientID != "":
		return s.p + "cfams:" + filter.ClientID
	case filter.Subject != "":
		return s.p + "sfams:" + filter.Subject
	}
	return s.p + "fams"
}

// ListFamilies implements store.Store. It reads the matching index and
// then the families, in one round trip each; it is not a snapshot.
func (s *Store) ListFamilies(ctx context.Context, filter store.FamilyFilter) ([]store.Family, error) {
	ms, err := s.listRecords(ctx, "list families", s.familySet(filter), s.famKey)
	if err != nil {
		return nil, err
	}
	var out []store.Family
	for _, m := range ms {
		if f := familyOf(m); matches(f, filter) {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b store.Family) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RevokeFamily implements store.Store.
func (s *Store) RevokeFamily(ctx context.Context, id string, at time.Time, reason string) error {
	n, err := revokeFamilyScript.Run(ctx, s.rdb, []string{s.famKey(id)}, enc(at), reason).Int()
	if err != nil {
		return wrap("revoke family", err)
	}
	if n == 0 {
		return fmt.Errorf("redis: family %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// RevokeFamilies implements store.Store, in one script.
func (s *Store) RevokeFamilies(ctx context.Context, filter store.FamilyFilter, at time.Time, reason string) (int, error) {
	n, err := revokeScript.Run(ctx, s.rdb, []string{s.familySet(filter)}, s.p, filter.ClientID, filter.Subject,
		enc(filter.ActiveAt), enc(at), reason, "").Int()
	if err != nil {
		return 0, wrap("revoke families", err)
	}
	return n, nil
}

// GetRefreshToken implements store.Store.
func (s *Store) GetRefreshToken(ctx context.Context, hash []byte) (store.RefreshToken, store.Family, error) {
	notFound := fmt.Errorf("redis: refresh token: %w", store.ErrNotFound)
	h := hex.EncodeToString(hash)
	id, err := s.rdb.Get(ctx, s.idxKey(h)).Result()
	if errors.Is(err, goredis.Nil) {
		return store.RefreshToken{}, store.Family{}, notFound
	} else if err != nil {
		return store.RefreshToken{}, store.Family{}, wrap("get refresh token", err)
	}
	ms, err := s.getAll(ctx, "get refresh token", []string{s.tokKey(id, h), s.famKey(id)})
	if err != nil {
		return store.RefreshToken{}, store.Family{}, err
	}
	tm, fm := ms[0], ms[1]
	if len(tm) == 0 || len(fm) == 0 {
		return store.RefreshToken{}, store.Family{}, notFound
	}
	gen, _ := strconv.ParseInt(tm["gen"], 10, 64)
	t := store.RefreshToken{Hash: append([]byte(nil), hash...), FamilyID: id, Generation: gen,
		IssuedAt: dec(tm["issued"]), RotatedAt: dec(tm["rotated"])}
	if v := tm["succ"]; v != "" {
		t.Successor, _ = hex.DecodeString(v)
	}
	return t, familyOf(fm), nil
}

// Rotate implements store.Store in three round trips: GET Ptokidx:OLD (the
// family) with its PEXPIRETIME, SET Ptokidx:NEW NX GET (claim the successor's index entry; one
// naming another family is ErrExists), then rotateScript on the family's
// keys, which decides and writes atomically.
//
// A claim is never released, even when the rotation did not happen: a
// concurrent Rotate of the same Old to the same New may have rotated
// relying on it, and only the family's slot knows, so releasing it would
// race. An unused claim names a token that does not exist (GetRefreshToken
// and Rotate answer ErrNotFound for it) and expires with the family.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	notFound := fmt.Errorf("redis: refresh token: %w", store.ErrNotFound)
	oldHex, newHex := hex.EncodeToString(req.Old), hex.EncodeToString(req.New)
	// The old token's index entry expires with the family (PXAT at its
	// expiry plus the margin): the successor's entry and token get the same.
	oldIdx := s.idxKey(oldHex)
	var get *goredis.StringCmd
	var pxt *goredis.Cmd
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, oldIdx)
		pxt = p.Do(ctx, "PEXPIRETIME", oldIdx)
		return nil
	}); err != nil && !errors.Is(err, goredis.Nil) {
		return store.RotateResult{}, wrap("rotate", err)
	}
	id, err := get.Result()
	if errors.Is(err, goredis.Nil) {
		return store.RotateResult{}, notFound
	} else if err != nil {
		return store.RotateResult{}, wrap("rotate", err)
	}
	px := ""
	if ms, err := pxt.Int64(); err == nil && ms > 0 {
		px = strconv.FormatInt(ms, 10)
	}
	newIdx := s.idxKey(newHex)
	setArgs := []any{"SET", newIdx, id, "NX", "GET"}
	if px != "" {
		setArgs = append(setArgs, "PXAT", px)
	}
	switch holder, err := s.rdb.Do(ctx, setArgs...).Text(); {
	case errors.Is(err, goredis.Nil): // claimed
	case err != nil:
		return store.RotateResult{}, wrap("rotate", err)
	case holder != id:
		return store.RotateResult{}, fmt.Errorf("redis: successor: %w", store.ErrExists)
	}
	return s.rotateScript(ctx, id, oldHex, newHex, px, req)
}

func (s *Store) rotateScript(ctx context.Context, id, oldHex, newHex, px string, req store.RotateRequest) (store.RotateResult, error) {
	v, err := rotateScript.Run(ctx, s.rdb, []string{s.famKey(id), s.tokKey(id, oldHex), s.tokKey(id, newHex), s.toksKey(id)},
		req.ClientID, enc(req.Now), req.Grace.Microseconds(), enc(req.IdleExpiresAt), newHex, px).Slice()
	if err != nil {
		return store.RotateResult{}, wrap("rotate", err)
	}
	outcome, _ := v[0].(string)
	var f store.Family
	if len(v) > 1 {
		f = familyOf(pairs(v[1]))
	}
	res := store.RotateResult{Family: f}
	switch outcome {
	case "rotated":
		res.Outcome = store.Rotated
	case "repeated":
		res.Outcome = store.Repeated
	case "reuse":
		res.Outcome = store.ReuseDetected
	case "revoked":
		return res, fmt.Errorf("redis: family %q: %w", id, store.ErrRevoked)
	case "expired":
		return res, fmt.Errorf("redis: family %q: %w", id, store.ErrExpired)
	case "exists":
		return store.RotateResult{}, fmt.Errorf("redis: successor: %w", store.ErrExists)
	default:
		return store.RotateResult{}, fmt.Errorf("redis: refresh token: %w", store.ErrNotFound)
	}
	return res, nil
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

// DeleteExpired implements store.Store, in one script over every family
// (see the package doc: Redis's TTLs drop ended families by themselves;
// this deletes what ended by the caller's clock).
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	n, err := deleteExpiredScript.Run(ctx, s.rdb, []string{s.p + "fams", s.p + "denyidx"}, s.p, enc(before)).Int()
	if err != nil {
		return 0, wrap("delete expired", err)
	}
	return n, nil
}
