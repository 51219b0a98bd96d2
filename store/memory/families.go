package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tokend/tokend/store"
)

// CreateFamily implements store.Store.
func (s *Store) CreateFamily(_ context.Context, f store.Family) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.families[f.ID]; ok {
		return fmt.Errorf("family %q: %w", f.ID, store.ErrExists)
	}
	s.families[f.ID] = cloneFamily(f)
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

// Rotate implements store.Store: the family's record decided by
// store.Decide under the store's lock, on the caller's clock.
func (s *Store) Rotate(_ context.Context, req store.RotateRequest) (store.RotateResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.families[req.FamilyID]
	if !ok {
		return store.RotateResult{}, fmt.Errorf("memory: refresh token: %w", store.ErrNotFound)
	}
	o, err := store.Decide(f, req, req.Now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.RotateResult{}, err
	case err != nil:
		return store.RotateResult{Family: cloneFamily(f)}, err
	}
	f = store.After(f, req, o, req.Now)
	s.families[f.ID] = f
	return store.RotateResult{Outcome: o, Family: cloneFamily(f)}, nil
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
