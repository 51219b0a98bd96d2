package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"

	"github.com/tokend/tokend/store"
)

// refresh is the refresh_token grant (RFC 6749 §6) with rotation: the
// presented token (the parameter, or cookie mode's cookie) is replaced by
// its successor in one atomic step. A refused token counts for the throttle against src and, if the client
// proved a secret (confidential), against the client; see refreshRefused.
func (s *Server) refresh(ctx context.Context, c store.Client, confidential bool, src netip.Addr, presented string, form url.Values) (*tokenResponse, error) {
	ref, err := s.refreshTokenRef(ctx, presented)
	if errors.Is(err, errUnknownToken) {
		return nil, s.refreshRefused(ctx, src, c, confidential, true)
	}
	if err != nil {
		return nil, err
	}
	var narrowed string
	if form.Has("scope") {
		// RFC 6749 §6: the scope may be narrowed, never widened. Checked
		// before the rotation, so that a refused request spends nothing.
		fam, err := s.store.GetFamily(ctx, ref.family)
		if errors.Is(err, store.ErrNotFound) || err == nil && fam.ClientID != c.ID {
			return nil, s.refreshRefused(ctx, src, c, confidential, true)
		}
		if err != nil {
			return nil, fmt.Errorf("look up refresh token: %w", err)
		}
		if narrowed, err = narrowScope(form.Get("scope"), fam.Scope); err != nil {
			return nil, err
		}
	}
	next, err := s.refreshKeys.successor(presented, ref)
	if err != nil {
		return nil, err
	}
	now := s.now()
	// The store checks that the token is this client's in the same atomic
	// step: another client's token is not found and nothing changes.
	res, err := s.store.Rotate(ctx, store.RotateRequest{
		FamilyID: ref.family, Generation: ref.generation, Old: hashToken(presented), New: hashToken(next),
		ClientID: c.ID, Now: now, Grace: s.cfg.Grace, IdleExpiresAt: now.Add(s.cfg.RefreshIdle),
		// A retry may have been given its successor under another secret.
		Alternates: s.refreshKeys.alternates(presented, ref),
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, s.refreshRefused(ctx, src, c, confidential, true)
	case errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired):
		return nil, s.refreshRefused(ctx, src, c, confidential, false)
	case err != nil:
		return nil, fmt.Errorf("rotate: %w", err)
	case res.Outcome == store.ReuseDetected:
		s.metrics.rotations.WithLabelValues(res.Outcome.String()).Inc()
		s.metrics.revoked.WithLabelValues("reuse").Inc()
		s.log.WarnContext(ctx, "refresh token reuse detected; family revoked", "family", res.Family.ID, "client", c.ID, "subject", res.Family.Subject)
		return nil, s.refreshRefused(ctx, src, c, confidential, false)
	}
	s.metrics.rotations.WithLabelValues(res.Outcome.String()).Inc()
	if res.Outcome == store.Repeated && !bytes.Equal(res.Family.TokenHash, hashToken(next)) {
		// The successor given first was derived under another secret.
		var ok bool
		if next, ok = s.refreshKeys.repeated(presented, ref, res.Family.TokenHash); !ok {
			return nil, fmt.Errorf("rotate: family %s repeated with a successor no secret derives", res.Family.ID)
		}
	}
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
	resp.RefreshToken, resp.familyExpires = next, f.ExpiresAt
	return resp, nil
}

// refreshRefused counts a refused refresh token and returns the answer:
// invalid_grant, or 429 if the token is unknown (malformed, never issued,
// another client's, or deleted) and its source or client was already
// locked. A token the store knows but that has ended is always
// invalid_grant, the answer that sends its holder to log in again. A
// valid token is never refused for the failures of others: no one can
// guess one.
func (s *Server) refreshRefused(ctx context.Context, src netip.Addr, c store.Client, confidential, unknown bool) error {
	client := ""
	if confidential {
		client = c.ID // a client_id alone never spends the client's budget
	}
	if wait := s.thr.refreshFailed(ctx, src, client, s.now()); wait > 0 && unknown {
		return errThrottledFor(wait)
	}
	return errInvalidGrant("invalid refresh token")
}
