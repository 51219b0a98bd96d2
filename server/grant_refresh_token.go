package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/tokend/tokend/store"
)

// refresh is the refresh_token grant (RFC 6749 §6) with rotation: the
// presented token (the parameter, or cookie mode's cookie) is replaced by
// its successor in one atomic step. A refused token is invalid_grant
// (refreshRefused). The access token is for the family's audience, or
// for the resources requested among it (RFC 8707 §2.2).
func (s *Server) refresh(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	c, form, presented := req.client, req.form, req.refreshToken
	ref, err := s.refreshTokenRef(ctx, presented)
	if errors.Is(err, errUnknownToken) {
		return nil, s.refreshRefused()
	}
	if err != nil {
		return nil, err
	}
	narrowed, audience, err := s.narrowRefresh(ctx, c, form, ref.family)
	if err != nil {
		return nil, err
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
		return nil, s.refreshRefused()
	case errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired):
		return nil, s.refreshRefused()
	case err != nil:
		return nil, fmt.Errorf("rotate: %w", err)
	case res.Outcome == store.ReuseDetected:
		s.metrics.rotations.WithLabelValues(res.Outcome.String()).Inc()
		s.metrics.revoked.WithLabelValues("reuse").Inc()
		s.log.WarnContext(ctx, "refresh token reuse detected; family revoked", "family", res.Family.ID, "client", c.ID, "subject", res.Family.Subject)
		return nil, s.refreshRefused()
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
	if audience == nil {
		audience = f.Audience
	}
	if audience, err = allowedAudience(c, audience); err != nil {
		// The rotation is done; the family cannot go on: end it.
		if rerr := s.store.RevokeFamily(ctx, f.ID, now, reasonResourcesRemoved); rerr != nil {
			return nil, fmt.Errorf("revoke a family left without resources: %w", rerr)
		}
		s.metrics.revoked.WithLabelValues(reasonResourcesRemoved).Inc()
		return nil, err
	}
	resp, err := s.issue(ctx, issueRequest{client: c, subject: f.Subject, scope: scope, grant: grantRefreshToken,
		family: f.ID, claims: f.Claims, ttl: f.AccessTTL, audience: audience})
	if err != nil {
		return nil, err
	}
	resp.RefreshToken, resp.refreshExpires = next, refreshExpiry(f, res.Outcome == store.Repeated, s.cfg.Grace, now)
	return resp, nil
}

// narrowRefresh reads the scope and resource parameters of a refresh
// request for client c of the family familyID: the scope narrowed (RFC
// 6749 §6: narrowed, never widened) and the resources requested, each of
// which must be among the family's Audience (RFC 8707 §2.2), or "" and
// nil when the request names none. Checked before the rotation, so that
// a refused request spends nothing.
func (s *Server) narrowRefresh(ctx context.Context, c store.Client, form url.Values, familyID string) (string, []string, error) {
	if !form.Has("scope") && !form.Has("resource") {
		return "", nil, nil
	}
	fam, err := s.store.GetFamily(ctx, familyID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !fam.OwnedBy(c.ID) {
		return "", nil, s.refreshRefused()
	}
	if err != nil {
		return "", nil, fmt.Errorf("look up refresh token: %w", err)
	}
	var narrowed string
	if form.Has("scope") {
		if narrowed, err = narrowScope(form.Get("scope"), fam.Scope); err != nil {
			return "", nil, err
		}
	}
	var audience []string
	if requested := form["resource"]; len(requested) > 0 {
		if audience, err = narrowResources(requested, fam.Audience, "the resource is not among those the refresh token was granted for"); err != nil {
			return "", nil, err
		}
	}
	return narrowed, audience, nil
}

// reasonResourcesRemoved is the revocation reason of a family whose
// client no longer may request any of its resources (allowedAudience).
const reasonResourcesRemoved = "resources_removed"

// allowedAudience returns the resources of audience that client c still
// may request (store.Client.Resources): `tokend client update` may have
// removed some since the family started, and its access tokens are then
// no longer for them. A family all of whose resources were removed
// cannot go on (its tokens would be for a resource it never asked for,
// the server's default audience): invalid_grant, the family is revoked
// (reasonResourcesRemoved) and its holder logs in again. A family
// without resources is unaffected.
func allowedAudience(c store.Client, audience []string) ([]string, error) {
	if len(audience) == 0 {
		return audience, nil
	}
	kept := slices.DeleteFunc(slices.Clone(audience), func(r string) bool { return !slices.Contains(c.Resources, r) })
	if len(kept) == 0 {
		return nil, errInvalidGrant("the client may no longer request the resources of this login")
	}
	return kept, nil
}

// refreshRefused is the answer to a refresh token that cannot work:
// invalid_grant (RFC 6749 §5.2), whatever it was (unknown, forged,
// damaged, another client's, of an ended or deleted family) and however
// many came before, so that its holder goes back to log in instead of
// retrying. Refresh tokens are not throttled (see Throttle).
func (s *Server) refreshRefused() error {
	return errInvalidGrant("invalid refresh token")
}
