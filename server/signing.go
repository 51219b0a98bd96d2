package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend/store"
)

// DefaultKeyStaleness is Config.KeyStaleness's default: a signature, or a
// JWKS answer, uses keys read from the store at most this long before.
const DefaultKeyStaleness = 250 * time.Millisecond

// sign signs claims with the key the store holds to sign: with a
// KeyChecker Signer, the keys are brought up to date first (keysFresh),
// so that no token is signed with a key another process or instance
// revoked more than Config.KeyStaleness before. A store that cannot be
// read fails the signature (503 when it is unavailable): the key it would
// use cannot be known. A reload that read every key's state but a private
// key this process cannot open (store.ErrUnreadable: the store was sealed
// under it) leaves the signer truthful: it signs if it holds the key that
// signs, and fails otherwise.
func (s *Server) sign(ctx context.Context, claims any) (string, error) {
	if err := s.keysFresh(ctx); err != nil {
		return "", fmt.Errorf("reload signing keys: %w", err)
	}
	return s.cfg.Signer.Sign(claims)
}

// keysFresh reloads a KeyChecker Signer's keys unless a reload that began
// less than Config.KeyStaleness ago succeeded: a busy server reads its
// keys a few times a second, not once per request, and a key revoked in
// the store is used by no signature or JWKS answer that begins
// KeyStaleness after the revocation.
func (s *Server) keysFresh(ctx context.Context) error {
	kc, ok := s.cfg.Signer.(KeyChecker)
	if !ok {
		return nil
	}
	now := s.now()
	ns := now.UnixNano()
	if last := s.keysReadAt.Load(); last != 0 && ns >= last && ns-last < int64(s.cfg.KeyStaleness) {
		return nil
	}
	if err := kc.Reload(ctx, now); err != nil && !errors.Is(err, store.ErrUnreadable) {
		return err
	}
	s.keysReadAt.Store(ns)
	return nil
}
