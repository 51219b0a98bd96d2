package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokend/tokend/store"
)

// sign signs claims with the key the store holds to sign at this moment:
// with a KeyChecker Signer, the keys are brought up to date first, so
// that no token is signed with a key that another process or instance
// has revoked meanwhile. A store that cannot be read fails the signature
// (503 when it is unavailable): the key it would use cannot be known. A
// reload that read every key's state but a private key this process
// cannot open (store.ErrUnreadable: the store was sealed under it) leaves
// the signer truthful: it signs if it holds the key that signs, and fails
// otherwise.
func (s *Server) sign(ctx context.Context, claims any) (string, error) {
	if kc, ok := s.cfg.Signer.(KeyChecker); ok {
		if err := kc.Reload(ctx, s.now()); err != nil && !errors.Is(err, store.ErrUnreadable) {
			return "", fmt.Errorf("reload signing keys: %w", err)
		}
	}
	return s.cfg.Signer.Sign(claims)
}
