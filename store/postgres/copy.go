package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokend/tokend/store"
)

var _ store.Importer = (*Store)(nil)

// ListSecrets implements store.Importer.
func (s *Store) ListSecrets(ctx context.Context) ([]store.StoredSecret, error) {
	return readAll(ctx, s, "list secrets", "SELECT name, value FROM secrets ORDER BY name", func(r row) (store.StoredSecret, error) {
		var v store.StoredSecret
		err := r.Scan(&v.Name, &v.Value)
		if v.Value == nil {
			v.Value = []byte{}
		}
		return v, err
	})
}

// ListSessions implements store.Importer.
func (s *Store) ListSessions(ctx context.Context) ([]store.Session, error) {
	return readAll(ctx, s, "list sessions", "SELECT "+sessionCols+" FROM sessions ORDER BY id", scanSession)
}

// ListConsents implements store.Importer.
func (s *Store) ListConsents(ctx context.Context) ([]store.Consent, error) {
	return readAll(ctx, s, "list consents", "SELECT subject, client_id, scopes, granted_at FROM consents ORDER BY subject, client_id",
		func(r row) (store.Consent, error) {
			var c store.Consent
			var scopes string
			var granted pgtype.Timestamptz
			err := r.Scan(&c.Subject, &c.ClientID, &scopes, &granted)
			c.Scopes, c.GrantedAt = strings.Fields(scopes), tout(granted)
			return c, err
		})
}

// ListRevokedAccessTokens implements store.Importer.
func (s *Store) ListRevokedAccessTokens(ctx context.Context) ([]store.RevokedAccessToken, error) {
	return readAll(ctx, s, "list revoked access tokens", "SELECT jti, expires_at FROM denied_access_tokens ORDER BY jti",
		func(r row) (store.RevokedAccessToken, error) {
			var t store.RevokedAccessToken
			var exp pgtype.Timestamptz
			err := r.Scan(&t.JTI, &exp)
			t.ExpiresAt = tout(exp)
			return t, err
		})
}

// ImportFamily implements store.Importer: one INSERT of every field as
// given, never rebased onto now() (as CreateFamily does under
// WithCallerClock).
func (s *Store) ImportFamily(ctx context.Context, f store.Family) error {
	if err := store.CheckFamily(f); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	_, err := s.pool.Exec(ctx, qCreateFamily, f.ID, f.ClientID, f.Subject, f.Scope, f.Claims, int64(f.AccessTTL),
		tin(f.CreatedAt), tin(f.LastUsedAt), tin(f.IdleExpiresAt), tin(f.ExpiresAt), f.Generation,
		f.TokenHash, f.PreviousHash, tin(f.RotatedAt), tin(f.RevokedAt), f.RevokeReason, f.SessionID, strings.Join(f.Audience, " "))
	return dbErr("import family "+f.ID, err)
}

var _ store.LegacyTokenCounter = (*Store)(nil)

// CountLegacyTokens implements store.LegacyTokenCounter.
func (s *Store) CountLegacyTokens(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM legacy_tokens t JOIN families f ON f.id = t.family_id "+
		"WHERE t.generation = f.generation AND f.revoked_at IS NULL AND f.idle_expires_at > $1 AND f.expires_at > $1", now).Scan(&n)
	if err != nil {
		return 0, dbErr("count legacy tokens", err)
	}
	return n, nil
}
