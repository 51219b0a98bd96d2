package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store"
)

var _ store.Importer = (*Store)(nil)

// ListSecrets implements store.Importer: the secrets listed in Psecrets.
func (s *Store) ListSecrets(ctx context.Context) ([]store.StoredSecret, error) {
	names, err := s.rdb.SMembers(ctx, s.p+"secrets").Result()
	if err != nil {
		return nil, wrap("list secrets", err)
	}
	slices.Sort(names)
	cmds := make([]*goredis.StringCmd, len(names))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.Get(ctx, s.secretKey(n))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, wrap("list secrets", err)
	}
	out := make([]store.StoredSecret, 0, len(names))
	for i, c := range cmds {
		v, err := c.Bytes()
		if errors.Is(err, goredis.Nil) {
			continue // listed, not stored
		}
		if err != nil {
			return nil, wrap("list secrets", err)
		}
		out = append(out, store.StoredSecret{Name: names[i], Value: v})
	}
	return out, nil
}

// ListSessions implements store.Importer: the sessions listed in
// Psessidx that Redis has not dropped yet.
func (s *Store) ListSessions(ctx context.Context) ([]store.Session, error) {
	return listIndexed(ctx, s, "list sessions", "sessidx", true, s.sessKey, func(m map[string]string) store.Session {
		return store.Session{ID: m["id"], Hash: bytesOf(m["hash"]), Subject: m["subject"], AuthTime: dec(m["auth"]),
			CreatedAt: dec(m["created"]), ExpiresAt: dec(m["exp"]), EndedAt: dec(m["ended"])}
	})
}

// ListConsents implements store.Importer: for each client, the users
// listed in Pcconsents:CLIENT, and their consent in Pconsents:SUBJECT.
// Every consent is of a stored client: DeleteClient deletes its consents.
func (s *Store) ListConsents(ctx context.Context) ([]store.Consent, error) {
	clients, err := s.rdb.SMembers(ctx, s.p+"clients").Result()
	if err != nil {
		return nil, wrap("list consents", err)
	}
	var out []store.Consent
	for _, client := range clients {
		subjects, err := s.rdb.SMembers(ctx, s.p+"cconsents:"+client).Result()
		if err != nil {
			return nil, wrap("list consents", err)
		}
		for _, subject := range subjects {
			c, err := s.GetConsent(ctx, subject, client)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b store.Consent) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.ClientID, b.ClientID))
	})
	return out, nil
}

// ListRevokedAccessTokens implements store.Importer: the entries of
// Pdenyidx whose Pdeny:JTI Redis has not dropped yet.
func (s *Store) ListRevokedAccessTokens(ctx context.Context) ([]store.RevokedAccessToken, error) {
	jtis, err := s.rdb.ZRange(ctx, s.p+"denyidx", 0, -1).Result()
	if err != nil {
		return nil, wrap("list revoked access tokens", err)
	}
	slices.Sort(jtis)
	cmds := make([]*goredis.StringCmd, len(jtis))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, j := range jtis {
			cmds[i] = p.Get(ctx, s.p+"deny:"+j)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, wrap("list revoked access tokens", err)
	}
	out := make([]store.RevokedAccessToken, 0, len(jtis))
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, goredis.Nil) {
			continue // expired
		}
		if err != nil {
			return nil, wrap("list revoked access tokens", err)
		}
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis: revoked access token: expiry %w", err)
		}
		out = append(out, store.RevokedAccessToken{JTI: jtis[i], ExpiresAt: time.UnixMicro(us).UTC()})
	}
	return out, nil
}

// ImportFamily implements store.Importer: CreateFamily's script, with
// f's times as given (never rebased onto the Redis server's TIME).
func (s *Store) ImportFamily(ctx context.Context, f store.Family) error {
	if err := store.CheckFamily(f); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	argv := append([]any{f.ID, s.pxat(f.ExpiresAt)}, familyFields(f)...)
	n, err := createFamilyScript.Run(ctx, s.rdb, s.familyKeys(f), argv...).Int()
	if err != nil {
		return wrap("import family", err)
	}
	if n == 0 {
		return fmt.Errorf("redis: family %q: %w", f.ID, store.ErrExists)
	}
	return nil
}
