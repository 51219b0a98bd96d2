package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tokend/tokend/store"
)

// CreateFamily implements store.Store.
func (s *Store) CreateFamily(_ context.Context, f store.Family) error {
	if err := store.CheckFamily(f); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
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
		(filter.SessionID == "" || f.SessionID == filter.SessionID) &&
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

// Rotate implements store.Store: store.CompareAndRotate under the store's
// lock, on the caller's clock.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := store.CompareAndRotate(ctx, req,
		func(context.Context) (store.Family, time.Time, error) {
			f, ok := s.families[req.FamilyID]
			if !ok {
				return store.Family{}, time.Time{}, fmt.Errorf("memory: refresh token: %w", store.ErrNotFound)
			}
			return f, req.Now, nil
		},
		func(_ context.Context, _, next store.Family, _ store.Outcome) (store.Family, bool, error) {
			s.families[next.ID] = cloneFamily(next)
			return next, true, nil
		})
	res.Family = cloneFamily(res.Family)
	return res, err
}

// DeleteExpired implements store.Store.
func (s *Store) DeleteExpired(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, f := range s.families {
		ended := (!f.RevokedAt.IsZero() && f.RevokedAt.Before(before)) || !f.End().After(before)
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
	for h, c := range s.codes {
		if !c.ExpiresAt.After(before) {
			delete(s.codes, h)
		}
	}
	for id, sess := range s.sessions {
		if sess.Ended(before) {
			delete(s.sessions, id)
		}
	}
	return n, nil
}
