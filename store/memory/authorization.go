package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tokend/tokend/store"
)

// CreateAuthorizationCode implements store.Store.
func (s *Store) CreateAuthorizationCode(_ context.Context, c store.AuthorizationCode) error {
	if err := store.CheckAuthorizationCode(c); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.codes[string(c.Hash)]; ok {
		return fmt.Errorf("memory: authorization code: %w", store.ErrExists)
	}
	s.codes[string(c.Hash)] = c.Clone()
	return nil
}

// GetAuthorizationCode implements store.Store.
func (s *Store) GetAuthorizationCode(_ context.Context, hash []byte) (store.AuthorizationCode, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[string(hash)]
	if !ok {
		return store.AuthorizationCode{}, fmt.Errorf("memory: authorization code: %w", store.ErrNotFound)
	}
	return c.Clone(), nil
}

// RedeemAuthorizationCode implements store.Store under the store's
// mutex, on the caller's clock (f.CreatedAt).
func (s *Store) RedeemAuthorizationCode(_ context.Context, hash []byte, f store.Family) (store.AuthorizationCode, error) {
	if err := store.CheckFamily(f); err != nil {
		return store.AuthorizationCode{}, fmt.Errorf("memory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[string(hash)]
	if !ok {
		return store.AuthorizationCode{}, fmt.Errorf("memory: authorization code: %w", store.ErrNotFound)
	}
	sess, ok := s.sessions[c.SessionID]
	next, err := c.Redeem(f, f.CreatedAt, ok && sess.EndedAt.IsZero())
	switch {
	case err == nil:
		if _, ok := s.families[f.ID]; ok {
			return store.AuthorizationCode{}, fmt.Errorf("family %q: %w", f.ID, store.ErrExists)
		}
		s.families[f.ID] = cloneFamily(f)
		s.codes[string(hash)] = next
	case errors.Is(err, store.ErrRedeemed):
		if fam, ok := s.families[c.FamilyID]; ok && fam.RevokedAt.IsZero() {
			fam.RevokedAt, fam.RevokeReason = f.CreatedAt, store.ReasonCodeReplay
			s.families[c.FamilyID] = fam
		}
	}
	return next.Clone(), err
}

func cloneSession(sess store.Session) store.Session {
	sess.Hash = bytes.Clone(sess.Hash)
	return sess
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(_ context.Context, sess store.Session) error {
	if err := store.CheckSession(sess); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess.ID]; ok {
		return fmt.Errorf("session %q: %w", sess.ID, store.ErrExists)
	}
	s.sessions[sess.ID] = cloneSession(sess)
	return nil
}

// GetSession implements store.Store.
func (s *Store) GetSession(_ context.Context, id string) (store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return store.Session{}, fmt.Errorf("session %q: %w", id, store.ErrNotFound)
	}
	return cloneSession(sess), nil
}

// EndSession implements store.Store.
func (s *Store) EndSession(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return fmt.Errorf("session %q: %w", id, store.ErrNotFound)
	}
	if sess.EndedAt.IsZero() {
		sess.EndedAt = at
		s.sessions[id] = sess
	}
	return nil
}

// PutConsent implements store.Store.
func (s *Store) PutConsent(_ context.Context, c store.Consent) error {
	if err := store.CheckConsent(c); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Scopes = slices.Clone(c.Scopes)
	s.consents[consentKey{c.Subject, c.ClientID}] = c
	return nil
}

// GetConsent implements store.Store.
func (s *Store) GetConsent(_ context.Context, subject, clientID string) (store.Consent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.consents[consentKey{subject, clientID}]
	if !ok {
		return store.Consent{}, fmt.Errorf("consent of %q to %q: %w", subject, clientID, store.ErrNotFound)
	}
	c.Scopes = slices.Clone(c.Scopes)
	return c, nil
}
