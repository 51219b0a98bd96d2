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
// that its refreshes are for them too; a code of a built-in user who has
// been deleted since is refused, as a login of theirs would be.
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
	if err := s.codeSessionActive(ctx, rec); err != nil {
		return nil, err
	}
	audience, err := narrowResources(form["resource"], rec.Resources, "the resource was not requested in the authorization request")
	if err != nil {
		return nil, err
	}
	user, err := s.codeUser(ctx, rec)
	if err != nil {
		return nil, err
	}
	now := s.now()
	ireq := issueRequest{client: c, user: user, subject: rec.Subject, scope: rec.Scope, grant: grantAuthorizationCode, audience: audience}
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

// codeSessionActive refuses a code whose browser session has ended since
// it was issued: the user logged out (or was deleted, which ends her
// sessions), and nothing the session authorized may start a family now.
func (s *Server) codeSessionActive(ctx context.Context, rec store.AuthorizationCode) error {
	if rec.SessionID == "" {
		return nil
	}
	sess, err := s.store.GetSession(ctx, rec.SessionID)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && !sess.EndedAt.IsZero():
		return errInvalidGrant("the login that issued the authorization code has ended")
	case err != nil:
		return fmt.Errorf("get session: %w", err)
	}
	return nil
}

// codeUser returns the built-in user a code was issued to, for
// confirmOwners to check once the family is stored, or nil when users are
// the Authenticate hook's (nothing to check). A user deleted since, or
// deleted and created again since they logged in (rec.AuthTime), makes
// the code invalid_grant: store.DeleteUser ends the user's sessions and
// revokes their families but leaves unredeemed codes, which expire.
func (s *Server) codeUser(ctx context.Context, rec store.AuthorizationCode) (*store.User, error) {
	if s.cfg.Authenticate != nil {
		return nil, nil
	}
	u, err := s.store.GetUser(ctx, rec.Subject)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && u.CreatedAt.After(rec.AuthTime):
		return nil, errInvalidGrant("invalid authorization code")
	case err != nil:
		return nil, fmt.Errorf("get user: %w", err)
	}
	return &u, nil
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
