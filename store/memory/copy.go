package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/tokend/tokend/store"
)

var _ store.Importer = (*Store)(nil)

// ListSecrets implements store.Importer.
func (s *Store) ListSecrets(context.Context) ([]store.StoredSecret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.StoredSecret, 0, len(s.secrets))
	for name, v := range s.secrets {
		out = append(out, store.StoredSecret{Name: name, Value: bytes.Clone(v)})
	}
	slices.SortFunc(out, func(a, b store.StoredSecret) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// ListSessions implements store.Importer.
func (s *Store) ListSessions(context.Context) ([]store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		out = append(out, cloneSession(sess))
	}
	slices.SortFunc(out, func(a, b store.Session) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// ListConsents implements store.Importer.
func (s *Store) ListConsents(context.Context) ([]store.Consent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Consent, 0, len(s.consents))
	for _, c := range s.consents {
		c.Scopes = slices.Clone(c.Scopes)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b store.Consent) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.ClientID, b.ClientID))
	})
	return out, nil
}

// ListRevokedAccessTokens implements store.Importer.
func (s *Store) ListRevokedAccessTokens(context.Context) ([]store.RevokedAccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.RevokedAccessToken, 0, len(s.denied))
	for jti, exp := range s.denied {
		out = append(out, store.RevokedAccessToken{JTI: jti, ExpiresAt: exp})
	}
	slices.SortFunc(out, func(a, b store.RevokedAccessToken) int { return cmp.Compare(a.JTI, b.JTI) })
	return out, nil
}

// ImportFamily implements store.Importer: as CreateFamily, which stores
// every field as given.
func (s *Store) ImportFamily(ctx context.Context, f store.Family) error {
	if err := s.CreateFamily(ctx, f); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}
