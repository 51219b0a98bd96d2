package redis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/tokend/tokend/store"
)

// familyFields are a family's hash fields and values, for HSET. Token
// hashes are stored as they are (bytes), "" for none. The audience (aud,
// a JSON array) is written only when there is one: a family without the
// field, as every family stored before it existed, has none.
func familyFields(f store.Family) []any {
	fields := []any{"id", f.ID, "client", f.ClientID, "subject", f.Subject, "scope", f.Scope, "claims", f.Claims,
		"attl", int64(f.AccessTTL), "created", enc(f.CreatedAt), "used", enc(f.LastUsedAt),
		"idle", enc(f.IdleExpiresAt), "exp", enc(f.ExpiresAt), "gen", f.Generation,
		"tok", f.TokenHash, "prev", f.PreviousHash, "rotated", enc(f.RotatedAt),
		"revoked", enc(f.RevokedAt), "reason", f.RevokeReason, "sid", f.SessionID}
	if len(f.Audience) > 0 {
		fields = append(fields, "aud", jsonStrs(f.Audience))
	}
	return fields
}

func familyOf(m map[string]string) store.Family {
	attl, _ := strconv.ParseInt(m["attl"], 10, 64)
	gen, _ := strconv.ParseInt(m["gen"], 10, 64)
	f := store.Family{ID: m["id"], ClientID: m["client"], Subject: m["subject"], Scope: m["scope"],
		AccessTTL: time.Duration(attl), CreatedAt: dec(m["created"]), LastUsedAt: dec(m["used"]),
		IdleExpiresAt: dec(m["idle"]), ExpiresAt: dec(m["exp"]), Generation: gen,
		TokenHash: bytesOf(m["tok"]), PreviousHash: bytesOf(m["prev"]), RotatedAt: dec(m["rotated"]),
		RevokedAt: dec(m["revoked"]), RevokeReason: m["reason"], SessionID: m["sid"], Audience: strs(m["aud"])}
	f.Claims = bytesOf(m["claims"])
	return f
}

// bytesOf is v as bytes, nil for "".
func bytesOf(v string) []byte {
	if v == "" {
		return nil
	}
	return []byte(v)
}

// CreateFamily implements store.Store: it reads the Redis server's TIME
// (on the family's slot, unless Options.CallerClock), rebases f on it, and
// writes the family and its index entries in one script.
func (s *Store) CreateFamily(ctx context.Context, f store.Family) error {
	if err := store.CheckFamily(f); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	fam := s.famKey(f.ID)
	if !s.callerClk {
		m, now, err := s.readFamily(ctx, fam)
		if err != nil {
			return wrap("create family", err)
		}
		if len(m) > 0 {
			return fmt.Errorf("redis: family %q: %w", f.ID, store.ErrExists)
		}
		f = f.Rebase(now)
	}
	argv := append([]any{f.ID, s.pxat(f.ExpiresAt)}, familyFields(f)...)
	n, err := createFamilyScript.Run(ctx, s.rdb, s.familyKeys(f), argv...).Int()
	if err != nil {
		return wrap("create family", err)
	}
	if n == 0 {
		return fmt.Errorf("redis: family %q: %w", f.ID, store.ErrExists)
	}
	return nil
}

// familyKeys are the keys of f and of its index sets, for createFamily.
func (s *Store) familyKeys(f store.Family) []string {
	keys := []string{s.famKey(f.ID), s.p + "fams", s.p + "cfams:" + f.ClientID, s.p + "sfams:" + f.Subject}
	if f.SessionID != "" {
		keys = append(keys, s.p+"xfams:"+f.SessionID)
	}
	return keys
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
		(filter.SessionID == "" || f.SessionID == filter.SessionID) &&
		(filter.ActiveAt.IsZero() || f.Active(filter.ActiveAt))
}

// familySet is the narrowest family index that covers filter.
func (s *Store) familySet(filter store.FamilyFilter) string {
	switch {
	case filter.SessionID != "":
		return s.p + "xfams:" + filter.SessionID
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
		enc(filter.ActiveAt), enc(at), reason, "", filter.SessionID, "").Int()
	if err != nil {
		return 0, wrap("revoke families", err)
	}
	return n, nil
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
