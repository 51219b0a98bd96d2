package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/tokend/tokend/store"
)

var _ store.Importer = (*Store)(nil)

// ListSecrets implements store.Importer.
func (s *Store) ListSecrets(ctx context.Context) ([]store.StoredSecret, error) {
	return readAll(ctx, s, "list secrets", "SELECT name, value FROM secrets ORDER BY name", func(r *sql.Rows) (store.StoredSecret, error) {
		var v store.StoredSecret
		err := r.Scan(&v.Name, &v.Value)
		return v, err
	})
}

// ListSessions implements store.Importer.
func (s *Store) ListSessions(ctx context.Context) ([]store.Session, error) {
	return readAll(ctx, s, "list sessions", "SELECT "+sessionCols+" FROM sessions ORDER BY id", func(r *sql.Rows) (store.Session, error) {
		var sess store.Session
		var auth, created, expires, ended sql.NullInt64
		err := r.Scan(&sess.ID, &sess.Hash, &sess.Subject, &auth, &created, &expires, &ended)
		sess.AuthTime, sess.CreatedAt, sess.ExpiresAt, sess.EndedAt = tout(auth), tout(created), tout(expires), tout(ended)
		return sess, err
	})
}

// ListConsents implements store.Importer.
func (s *Store) ListConsents(ctx context.Context) ([]store.Consent, error) {
	return readAll(ctx, s, "list consents", "SELECT subject, client_id, scopes, granted_at FROM consents ORDER BY subject, client_id", func(r *sql.Rows) (store.Consent, error) {
		var c store.Consent
		var scopes string
		var granted sql.NullInt64
		err := r.Scan(&c.Subject, &c.ClientID, &scopes, &granted)
		c.Scopes, c.GrantedAt = strings.Fields(scopes), tout(granted)
		return c, err
	})
}

// ListRevokedAccessTokens implements store.Importer.
func (s *Store) ListRevokedAccessTokens(ctx context.Context) ([]store.RevokedAccessToken, error) {
	return readAll(ctx, s, "list revoked access tokens", "SELECT jti, expires_at FROM denied_access_tokens ORDER BY jti", func(r *sql.Rows) (store.RevokedAccessToken, error) {
		var t store.RevokedAccessToken
		var exp int64
		err := r.Scan(&t.JTI, &exp)
		t.ExpiresAt = time.UnixMicro(exp)
		return t, err
	})
}

// ImportFamily implements store.Importer: as CreateFamily, which stores
// every field as given (SQLite has no clock of its own).
func (s *Store) ImportFamily(ctx context.Context, f store.Family) error {
	if err := s.CreateFamily(ctx, f); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

var _ store.LegacyTokenCounter = (*Store)(nil)

// CountLegacyTokens implements store.LegacyTokenCounter.
func (s *Store) CountLegacyTokens(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.readRow(ctx, "SELECT count(*) FROM legacy_tokens t JOIN families f ON f.id = t.family_id "+
		"WHERE t.generation = f.generation AND f.revoked_at IS NULL AND f.idle_expires_at > ? AND f.expires_at > ?",
		now.UnixMicro(), now.UnixMicro()).Scan(&n)
	if err != nil {
		return 0, s.readErr("count legacy tokens", err)
	}
	return n, nil
}
