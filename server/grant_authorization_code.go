package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tokend/tokend/server/pkce"
	"github.com/tokend/tokend/store"
)

// authorizationCode is the authorization code grant (RFC 6749 §4.1.3):
// the code the authorization endpoint issued is redeemed, once, by the
// client it was issued to, from the redirect URI it was issued for, with
// the PKCE code_verifier of its challenge (RFC 7636 §4.5). Redeeming it
// starts a family in the same atomic step; a second redemption revokes
// that family (RFC 6749 §4.1.2). Every refusal of the code itself is
// invalid_grant, saying which check failed but nothing of the code. The
// family remembers the resources the code was issued for (RFC 8707), so
// that its refreshes are for them too.
//
// The code's owners need no second read once the family is stored (as
// confirmOwners does for the other grants): the redemption itself reads,
// in the same atomic step, the code, which DeleteClient deletes, and its
// browser session, which logout and DeleteUser end. So a code of a
// deleted client is unknown, and a code whose user logged out or was
// deleted (and perhaps created again) is refused; a delete that comes
// after the redemption revokes the family it finds.
func (s *Server) authorizationCode(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	c, form := req.client, req.form
	code := form.Get("code")
	if code == "" {
		return nil, errInvalidRequest(`missing "code"`)
	}
	rec, err := s.store.GetAuthorizationCode(ctx, hashCode(code))
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && rec.ClientID != c.ID:
		return nil, errInvalidGrant("invalid authorization code")
	case err != nil:
		return nil, fmt.Errorf("get authorization code: %w", err)
	case rec.RedirectURI != "" && form.Get("redirect_uri") != rec.RedirectURI:
		return nil, errInvalidGrant(`"redirect_uri" is not the one of the authorization request`)
	}
	if err := pkce.Verify(rec.CodeChallenge, form.Get("code_verifier")); err != nil {
		return nil, errInvalidGrant(err.Error())
	}
	audience, err := narrowResources(form["resource"], rec.Resources, "the resource was not requested in the authorization request")
	if err != nil {
		return nil, err
	}
	now := s.now()
	ireq := issueRequest{client: c, subject: rec.Subject, scope: rec.Scope, grant: grantAuthorizationCode, audience: audience}
	f, rt, err := s.newFamily(ireq, now)
	if err != nil {
		return nil, err
	}
	f.SessionID, f.Audience = rec.SessionID, slices.Clone(rec.Resources)
	if err := s.redeemCode(ctx, code, rec, f); err != nil {
		return nil, err
	}
	resp, err := s.issueFirst(ctx, ireq, f, rt, now)
	if err != nil {
		return nil, err
	}
	if !allowsGrant(c, grantRefreshToken) {
		resp.RefreshToken = "" // the family carries sid and revocation only
	}
	if openIDScope(rec.Scope) {
		if resp.IDToken, err = s.idToken(ctx, c, rec, resp.AccessToken, now); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// redeemCode redeems the code by starting f (store.RedeemAuthorizationCode).
func (s *Server) redeemCode(ctx context.Context, code string, rec store.AuthorizationCode, f store.Family) error {
	redeemed, err := s.store.RedeemAuthorizationCode(ctx, hashCode(code), f)
	switch {
	case errors.Is(err, store.ErrRedeemed):
		s.metrics.revoked.WithLabelValues(store.ReasonCodeReplay).Inc()
		s.log.WarnContext(ctx, "authorization code presented again; the family of its first redemption is revoked",
			"client", rec.ClientID, "subject", rec.Subject, "family", redeemed.FamilyID)
		return errInvalidGrant("invalid authorization code")
	case errors.Is(err, store.ErrExpired):
		return errInvalidGrant("the authorization code has expired")
	case errors.Is(err, store.ErrSessionEnded):
		return errInvalidGrant("the login that issued the authorization code has ended")
	case errors.Is(err, store.ErrNotFound):
		return errInvalidGrant("invalid authorization code")
	case err != nil:
		return fmt.Errorf("redeem authorization code: %w", err)
	}
	return nil
}

// narrowResources returns the audience of the access token of a token
// request with the resource parameters requested: the granted resources
// (of the authorization request, or of the family a refresh token is of)
// if none, else the ones requested, each of which must have been granted
// (RFC 8707 §2.2); otherwise invalid_target, described by refusal.
func narrowResources(requested, granted []string, refusal string) ([]string, error) {
	if len(requested) == 0 {
		return granted, nil
	}
	var out []string
	for _, r := range requested {
		if !slices.Contains(granted, r) {
			return nil, errInvalidTarget(refusal)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}
