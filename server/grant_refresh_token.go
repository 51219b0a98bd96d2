package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/tokend/tokend/store"
)

// refresh is the refresh_token grant (RFC 6749 §6) with rotation: the
// presented token is replaced by its successor in one atomic step.
func (s *Server) refresh(ctx context.Context, c store.Client, form url.Values) (*tokenResponse, error) {
	presented := form.Get("refresh_token")
	if presented == "" {
		return nil, errInvalidRequest("missing refresh_token")
	}
	if !validRefreshToken(presented) {
		return nil, errInvalidGrant("invalid refresh token")
	}
	var narrowed string
	if form.Has("scope") {
		// RFC 6749 §6: the scope may be narrowed, never widened. Checked
		// before the rotation, so that a refused request spends nothing.
		_, fam, err := s.store.GetRefreshToken(ctx, hashToken(presented))
		if errors.Is(err, store.ErrNotFound) || err == nil && fam.ClientID != c.ID {
			return nil, errInvalidGrant("invalid refresh token")
		}
		if err != nil {
			return nil, fmt.Errorf("look up refresh token: %w", err)
		}
		if narrowed, err = narrowScope(form.Get("scope"), fam.Scope); err != nil {
			return nil, err
		}
	}
	next := successor(s.cfg.Secret, presented)
	now := s.now()
	// The store checks that the token is this client's in the same atomic
	// step: another client's token is not found and nothing changes.
	res, err := s.store.Rotate(ctx, store.RotateRequest{
		Old: hashToken(presented), New: hashToken(next), ClientID: c.ID, Now: now, Grace: s.cfg.Grace,
		IdleExpiresAt: now.Add(s.cfg.RefreshIdle),
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired):
		return nil, errInvalidGrant("invalid refresh token")
	case err != nil:
		return nil, fmt.Errorf("rotate: %w", err)
	case res.Outcome == store.ReuseDetected:
		s.metrics.rotations.WithLabelValues(res.Outcome.String()).Inc()
		s.metrics.revoked.WithLabelValues("reuse").Inc()
		s.log.WarnContext(ctx, "refresh token reuse detected; family revoked", "family", res.Family.ID, "client", c.ID, "subject", res.Family.Subject)
		return nil, errInvalidGrant("invalid refresh token")
	}
	s.metrics.rotations.WithLabelValues(res.Outcome.String()).Inc()
	f := res.Family
	scope := f.Scope
	if narrowed != "" {
		scope = narrowed
	}
	resp, err := s.issue(ctx, issueRequest{client: c, subject: f.Subject, scope: scope, grant: grantRefreshToken,
		family: f.ID, claims: f.Claims, ttl: f.AccessTTL})
	if err != nil {
		return nil, err
	}
	resp.RefreshToken = next
	return resp, nil
}
