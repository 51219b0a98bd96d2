package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tokend/tokend/store"
)

// handleRevoke implements RFC 7009. Whatever the token, the answer says
// what happened:
//   - a refresh token (current or already rotated) revokes its whole family;
//   - an access token issued from a family (its sid: password, refresh and
//     mint grants) revokes that family, which ends its refresh tokens and
//     makes introspection report the access token inactive;
//   - an access token without a family (client_credentials) goes on the
//     store's deny-list until its exp, and introspection reports it
//     inactive from then on.
//
// A cookie-mode client (cookie.go) may leave the token out: the request
// then revokes the family of the refresh token in its cookie. Every 200 to
// such a client clears the cookie.
//
// The answer is 200 when the token was revoked, and also, as RFC 7009 §2.2
// asks, when it is unknown, expired, malformed or another client's: those
// tokens are left alone, and the caller learns nothing about them.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	cookie, err := s.revoke(r.Context(), r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if cookie {
		clearRefreshCookie(w)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revoke revokes what the request names and reports whether the client
// is in cookie mode.
func (s *Server) revoke(ctx context.Context, r *http.Request) (cookie bool, err error) {
	form, err := readForm(r)
	if err != nil {
		return false, err
	}
	// A public client identifies itself with client_id alone: it may
	// revoke its own tokens, whose possession it proves by sending them.
	client, _, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		return false, err
	}
	if err := s.checkClientOrigin(r, client); err != nil {
		return false, err
	}
	tok := form.Get("token")
	if tok == "" && client.Cookie {
		if err := cookieRequest(r, "revocation"); err != nil {
			return false, err
		}
		if tok = cookieToken(r); tok == "" {
			return true, nil // no cookie: nothing to revoke
		}
	}
	if tok == "" {
		return false, errInvalidRequest("missing token")
	}
	return client.Cookie, s.revokeToken(ctx, client, tok)
}

// revokeToken revokes tok if it is client's.
func (s *Server) revokeToken(ctx context.Context, client store.Client, tok string) error {
	if looksLikeRefreshToken(tok) {
		// Any token of the family, current or rotated, ends it (RFC 7009
		// §2.1: the server may revoke the grant the token belongs to).
		ref, err := s.refreshTokenRef(ctx, tok)
		if errors.Is(err, errUnknownToken) {
			return nil // RFC 7009 §2.2: an invalid token is answered 200
		}
		if err != nil {
			return err
		}
		return s.revokeFamily(ctx, client, ref.family)
	}
	c, ok, err := s.verifyAccess(ctx, tok)
	if err != nil {
		return err
	}
	if !ok || c.clientID != client.ID {
		return nil
	}
	if c.sid != "" {
		return s.revokeFamily(ctx, client, c.sid)
	}
	if err := s.store.RevokeAccessToken(ctx, c.jti, time.Unix(c.exp, 0)); err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	s.metrics.revokedAccess.Inc()
	return nil
}

// revokeFamily revokes the family id if it belongs to client; otherwise it
// does nothing.
func (s *Server) revokeFamily(ctx context.Context, client store.Client, id string) error {
	f, err := s.store.GetFamily(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !f.OwnedBy(client.ID) {
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
