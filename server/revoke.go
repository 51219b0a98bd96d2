package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tokend/tokend/store"
)

// handleRevoke implements RFC 7009. Revoking a refresh token revokes its
// whole family; revoking an access token revokes the family it was issued
// from (its sid), which ends its refresh tokens and makes introspection
// report it inactive. The answer is 200 whether or not the token was
// known, and tokens of other clients are left alone.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revoke(r.Context(), w, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revoke(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	form, err := readForm(w, r)
	if err != nil {
		return err
	}
	// A public client identifies itself with client_id alone: it may
	// revoke its own tokens, whose possession it proves by sending them.
	client, _, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		return err
	}
	tok := form.Get("token")
	if tok == "" {
		return errInvalidRequest("missing token")
	}
	familyID, err := s.familyOf(ctx, tok)
	if err != nil || familyID == "" {
		return err
	}
	f, err := s.store.GetFamily(ctx, familyID)
	if errors.Is(err, store.ErrNotFound) || err == nil && f.ClientID != client.ID {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get family: %w", err)
	}
	if err := s.store.RevokeFamily(ctx, f.ID, s.now(), "logout"); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("revoke family: %w", err)
	}
	s.metrics.revoked.WithLabelValues("logout").Inc()
	return nil
}

// familyOf returns the family a refresh or access token belongs to, or ""
// if it is not a token of this server.
func (s *Server) familyOf(ctx context.Context, tok string) (string, error) {
	if strings.HasPrefix(tok, refreshPrefix) {
		if !validRefreshToken(tok) {
			return "", nil
		}
		_, f, err := s.store.GetRefreshToken(ctx, hashToken(tok))
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("get refresh token: %w", err)
		}
		return f.ID, nil
	}
	claims, err := s.verifyAccess(ctx, tok)
	if err != nil {
		return "", nil
	}
	return claims.sid, nil
}
