package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tokend/tokend/store"
)

// CreateFamily implements store.Store.
func (s *Store) CreateFamily(_ context.Context, f store.Family, first store.RefreshToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.families[f.ID]; ok {
		return fmt.Errorf("family %q: %w", f.ID, store.ErrExists)
	}
	if _, ok := s.tokens[string(first.Hash)]; ok {
		return fmt.Errorf("refresh token: %w", store.ErrExists)
	}
	first.FamilyID, first.Generation = f.ID, 0
	first.RotatedAt, first.Successor = time.Time{}, nil
	s.families[f.ID] = cloneFamily(f)
	s.tokens[string(first.Hash)] = cloneToken(first)
	s.byFamily[f.ID] = []string{string(first.Hash)}
	return nil
}

// GetFamily implements store.Store.
func (s *Store) GetFamily(_ context.Context, id string) (store.Family, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.families[id]
	if !ok {
		return store.Family{}, fmt.Errorf("family %q: %w", id, store.ErrNotFound)
	}
	return cloneFamily(f), nil
}

func matches(f store.Family, filter store.FamilyFilter) bool {
	return (filter.ClientID == "" || f.ClientID == filter.ClientID) &&
		(filter.Subject == "" || f.Subject == filter.Subject) &&
		(filter.ActiveAt.IsZero() || f.Active(filter.ActiveAt))
}

// ListFamilies implements store.Store.
func (s *Store) ListFamilies(_ context.Context, filter store.FamilyFilter) ([]store.Family, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Family
	for _, f := range s.families {
		if matches(f, filter) {
			out = append(out, cloneFamily(f))
		}
	}
	slices.SortFunc(out, func(a, b store.Family) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RevokeFamily implements store.Store.
func (s *Store) RevokeFamily(_ context.Context, id string, at time.Time, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.families[id]
	if !ok {
		return fmt.Errorf("family %q: %w", id, store.ErrNotFound)
	}
	if f.RevokedAt.IsZero() {
		f.RevokedAt, f.RevokeReason = at, reason
		s.families[id] = f
	}
	return nil
}

// RevokeFamilies implements store.Store.
func (s *Store) RevokeFamilies(_ context.Context, filter store.FamilyFilter, at time.Time, reason string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokeLocked(filter, at, reason), nil
}

// revokeLocked revokes the unrevoked families that match; s.mu is held.
func (s *Store) revokeLocked(filter store.FamilyFilter, at time.Time, reason string) int {
	n := 0
	for id, f := range s.families {
		if f.RevokedAt.IsZero() && matches(f, filter) {
			f.RevokedAt, f.RevokeReason = at, reason
			s.families[id] = f
			n++
		}
	}
	return n
}

// GetRefreshToken implements store.Store.
func (s *Store) GetRefreshToken(_ context.Context, hash []byte) (store.RefreshToken, store.Family, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[string(hash)]
	if !ok {
		return store.RefreshToken{}, store.Family{}, fmt.Errorf("refresh token: %w", store.ErrNotFound)
	}
	return cloneToken(t), cloneFamily(s.families[t.FamilyID]), nil
}

// Rotate implements store.Store.
func (s *Store) Rotate(_ context.Context, req store.RotateRequest) (store.RotateResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.tokens[string(req.Old)]
	if !ok {
		return store.RotateResult{}, fmt.Errorf("refresh token: %w", store.ErrNotFound)
	}
	f := s.families[old.FamilyID]
	switch {
	case req.ClientID != "" && f.ClientID != req.ClientID:
		return store.RotateResult{}, fmt.Errorf("refresh token: %w", store.ErrNotFound)
	case !f.RevokedAt.IsZero():
		return store.RotateResult{Family: cloneFamily(f)}, fmt.Errorf("family %q: %w", f.ID, store.ErrRevoked)
	case !req.Now.Before(f.IdleExpiresAt) || !req.Now.Before(f.ExpiresAt):
		return store.RotateResult{Family: cloneFamily(f)}, fmt.Errorf("family %q: %w", f.ID, store.ErrExpired)
	}
	if old.RotatedAt.IsZero() {
		if _, taken := s.tokens[string(req.New)]; taken {
			return store.RotateResult{}, fmt.Errorf("successor: %w", store.ErrExists)
		}
		old.RotatedAt, old.Successor = req.Now, bytes.Clone(req.New)
		s.tokens[string(req.Old)] = old
		f.Generation++
		f.LastUsedAt = req.Now
		f.IdleExpiresAt = req.IdleExpiresAt
		if f.IdleExpiresAt.After(f.ExpiresAt) {
			f.IdleExpiresAt = f.ExpiresAt
		}
		s.families[f.ID] = f
		next := store.RefreshToken{Hash: bytes.Clone(req.New), FamilyID: f.ID, Generation: f.Generation, IssuedAt: req.Now}
		s.tokens[string(req.New)] = next
		s.byFamily[f.ID] = append(s.byFamily[f.ID], string(req.New))
		return store.RotateResult{Outcome: store.Rotated, Family: cloneFamily(f)}, nil
	}
	succ, ok := s.tokens[string(old.Successor)]
	if bytes.Equal(old.Successor, req.New) && req.Now.Sub(old.RotatedAt) <= req.Grace && ok && succ.RotatedAt.IsZero() {
		return store.RotateResult{Outcome: store.Repeated, Family: cloneFamily(f)}, nil
	}
	f.RevokedAt, f.RevokeReason = req.Now, store.ReasonReuse
	s.families[f.ID] = f
	return store.RotateResult{Outcome: store.ReuseDetected, Family: cloneFamily(f)}, nil
}

// DeleteExpired implements store.Store.
func (s *Store) DeleteExpired(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, f := range s.families {
		ended := (!f.RevokedAt.IsZero() && f.RevokedAt.Before(before)) || !f.ExpiresAt.After(before) || !f.IdleExpiresAt.After(before)
		if !ended {
			continue
		}
		for _, h := range s.byFamily[id] {
			delete(s.tokens, h)
		}
		delete(s.byFamily, id)
		delete(s.families, id)
		n++
	}
	for jti, exp := range s.denied {
		if exp.Before(before) {
			delete(s.denied, jti)
		}
	}
	return n, nil
}
