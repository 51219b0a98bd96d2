package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/store"
)

// builtinUsers is the default Authenticator: the store's users, whose
// passwords are argon2id hashes. Every check, of a known user or not, is
// admitted by the hashing gate for the memory its hash needs. A hash made
// with other parameters than Config.PasswordParams is replaced after a
// successful check, if the client is still there.
func (s *Server) builtinUsers(ctx context.Context, username, pw string) (string, error) {
	u, err := s.store.GetUser(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		// An unknown user costs what a known one does, memory included.
		release, err := s.admitHash(ctx, s.cfg.PasswordParams.MemoryBytes())
		if err != nil {
			return "", err
		}
		defer release()
		_ = s.checkPassword(ctx, s.dummyHash(), pw)
		return "", ErrBadCredentials
	}
	if err != nil {
		return "", fmt.Errorf("get user: %w", err)
	}
	stored, err := password.ParamsOf(u.PasswordHash)
	if err != nil {
		return "", fmt.Errorf("user %q: %w", username, err)
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
		return "", fmt.Errorf("user %q: %w", username, err)
	}
	defer release()
	switch err := s.checkPassword(ctx, u.PasswordHash, pw); {
	case errors.Is(err, password.ErrMismatch):
		return "", ErrBadCredentials
	case err != nil:
		return "", fmt.Errorf("user %q: %w", username, err)
	}
	if upgrade && ctx.Err() == nil {
		s.upgradeHash(ctx, u, pw, release)
	}
	if p, ok := ctx.Value(checkedUserKey{}).(*store.User); ok {
		*p = u
	}
	return u.Name, nil
}

// checkedUserKey is the context key under which the password grant asks
// builtinUsers for the user record it checked (a *store.User to fill).
type checkedUserKey struct{}

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
