package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/store"
)

// builtinUser checks a password against the store's users, the default
// of Config.Authenticate: the subject is the user's name, and the user
// record checked comes with it. Passwords are argon2id hashes. Every
// check, of a known user or not, is admitted by the hashing gate for the
// memory its hash needs. A hash made with other parameters than
// Config.PasswordParams is replaced after a successful check, if the
// client is still there.
func (s *Server) builtinUser(ctx context.Context, username, pw string) (string, *store.User, error) {
	u, err := s.store.GetUser(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		// An unknown user costs what a known one does, memory included.
		release, err := s.admitHash(ctx, s.cfg.PasswordParams.MemoryBytes())
		if err != nil {
			return "", nil, err
		}
		defer release()
		_ = s.checkPassword(ctx, s.dummyHash(), pw)
		return "", nil, ErrBadCredentials
	}
	if err != nil {
		return "", nil, fmt.Errorf("get user: %w", err)
	}
	stored, err := password.ParamsOf(u.PasswordHash)
	if err != nil {
		return "", nil, fmt.Errorf("user %q: %w", username, err)
	}
	// The upgrade hashes again under the same grant, after the check has
	// let go of its memory: the grant is the larger of the two.
	upgrade := password.NeedsRehash(u.PasswordHash, s.cfg.PasswordParams)
	need := stored.MemoryBytes()
	if upgrade {
		need = max(need, s.cfg.PasswordParams.MemoryBytes())
	}
	release, err := s.admitHash(ctx, need)
	if err != nil {
		return "", nil, fmt.Errorf("user %q: %w", username, err)
	}
	defer release()
	switch err := s.checkPassword(ctx, u.PasswordHash, pw); {
	case errors.Is(err, password.ErrMismatch):
		return "", nil, ErrBadCredentials
	case err != nil:
		return "", nil, fmt.Errorf("user %q: %w", username, err)
	}
	if upgrade && ctx.Err() == nil {
		s.upgradeHash(ctx, u, pw, release)
	}
	return u.Name, &u, nil
}

// upgradeHash replaces u's hash by one made with Config.PasswordParams,
// unless it changed since it was read (a password change wins). It calls
// release once the hashing is done. Failures are logged, not returned: the
// login has succeeded.
func (s *Server) upgradeHash(ctx context.Context, u store.User, pw string, release func()) {
	fresh, err := s.cfg.PasswordParams.Hash(pw)
	release()
	if err == nil {
		err = s.store.UpdatePasswordHash(ctx, u.Name, u.PasswordHash, fresh)
	}
	switch {
	case err == nil:
		s.log.DebugContext(ctx, "password hash upgraded", "user", u.Name, "params", s.cfg.PasswordParams.String())
	case errors.Is(err, store.ErrConflict):
		// Changed meanwhile; its new hash is the one to keep.
	default:
		s.log.WarnContext(ctx, "upgrade password hash", "user", u.Name, "err", err)
	}
}
