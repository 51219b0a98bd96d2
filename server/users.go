package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokend/tokend/internal/password"
	"github.com/tokend/tokend/store"
)

// builtinUsers is the default Authenticator: the store's users, whose
// passwords are argon2id hashes.
func (s *Server) builtinUsers(ctx context.Context, username, pw string) (string, error) {
	u, err := s.store.GetUser(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		_ = password.Check(s.dummyHash(), pw) // same cost as a real check
		return "", ErrBadCredentials
	}
	if err != nil {
		return "", fmt.Errorf("get user: %w", err)
	}
	switch err := password.Check(u.PasswordHash, pw); {
	case errors.Is(err, password.ErrMismatch):
		return "", ErrBadCredentials
	case err != nil:
		return "", fmt.Errorf("user %q: %w", username, err)
	}
	return u.Name, nil
}
