package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend/store"
)

// startFamily starts a family and issues its first token pair. It returns the
// family's ID too.
func (s *Server) startFamily(ctx context.Context, req issueRequest) (*tokenResponse, string, error) {
	now := s.now()
	f, rt, err := s.newFamily(req, now)
	if err != nil {
		return nil, "", err
	}
	if err := s.store.CreateFamily(ctx, f); err != nil {
		return nil, "", fmt.Errorf("create family: %w", err)
	}
	if err := s.confirmOwners(ctx, req, f.ID); err != nil {
		return nil, "", err
	}
	resp, err := s.issueFirst(ctx, req, f, rt, now)
	if err != nil {
		return nil, "", err
	}
	return resp, f.ID, nil
}

// newFamily returns a family for req starting at now, not yet stored,
// and its first refresh token.
func (s *Server) newFamily(req issueRequest, now time.Time) (store.Family, string, error) {
	id := newID()
	rt, err := s.refreshKeys.firstRefreshToken(id)
	if err != nil {
		return store.Family{}, "", err
	}
	f := store.Family{
		ID:         id,
		ClientID:   req.client.ID,
		Subject:    req.subject,
		Scope:      req.scope,
		Claims:     req.claims,
		AccessTTL:  req.ttl,
		CreatedAt:  now,
		LastUsedAt: now,
		ExpiresAt:  now.Add(s.cfg.RefreshAbsolute),
		TokenHash:  hashToken(rt),
	}.IdleUntil(now.Add(s.cfg.RefreshIdle))
	return f, rt, nil
}

// issueFirst issues the first token pair of family f, just stored with
// its first refresh token rt and its owners confirmed.
func (s *Server) issueFirst(ctx context.Context, req issueRequest, f store.Family, rt string, now time.Time) (*tokenResponse, error) {
	req.family = f.ID
	resp, err := s.issue(ctx, req)
	if err != nil {
		return nil, err
	}
	resp.RefreshToken, resp.refreshExpires = rt, refreshExpiry(f, false, 0, now)
	return resp, nil
}

// confirmOwners re-reads, once a family is stored, the client and the
// built-in user it was created for. Deleting either revokes the families
// that exist at that moment, in one step; a login already past its checks
// then creates its family after the delete. So if the client or the user
// is gone now, or was deleted and created again (another CreatedAt), the
// family is revoked with the delete's reason and the login fails as if
// the credentials had been refused. A client changed in place (`tokend
// client update`, `rotate-secret`: same CreatedAt, another secret or
// policy) is the same client, and the login stands.
func (s *Server) confirmOwners(ctx context.Context, req issueRequest, familyID string) error {
	reason, refusal := "", error(nil)
	c, err := s.store.GetClient(ctx, req.client.ID)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && !c.CreatedAt.Equal(req.client.CreatedAt):
		reason, refusal = store.ReasonClientDeleted, errInvalidClient(false)
	case err != nil:
		return fmt.Errorf("confirm client: %w", err)
	case req.user != nil:
		u, err := s.store.GetUser(ctx, req.user.Name)
		switch {
		case errors.Is(err, store.ErrNotFound) || err == nil && !u.CreatedAt.Equal(req.user.CreatedAt):
			reason, refusal = store.ReasonUserDeleted, errInvalidGrant("invalid username or password")
		case err != nil:
			return fmt.Errorf("confirm user: %w", err)
		}
	}
	if reason == "" {
		return nil
	}
	if err := s.store.RevokeFamily(ctx, familyID, s.now(), reason); err != nil {
		return fmt.Errorf("revoke family of a deleted owner: %w", err)
	}
	s.metrics.revoked.WithLabelValues(reason).Inc()
	return refusal
}

// issueRequest is what an access token is issued for.
type issueRequest struct {
	client store.Client
	// user is the built-in user a password login was checked against,
	// for confirmOwners; nil with another Authenticator, without a user,
	// and for an authorization code (whose redemption confirms it).
	user    *store.User
	subject string
	scope   string
	grant   string
	family  string        // sid; empty without a refresh token
	claims  []byte        // custom claims, a JSON object
	ttl     time.Duration // overrides Config.AccessTTL if positive
	// audience, if set, is the access token's aud: the resources the
	// token is for (RFC 8707 §2). Empty: Config.Audience.
	audience []string
}

// issue signs an access token (RFC 9068), to expire at accessExpiry.
func (s *Server) issue(ctx context.Context, req issueRequest) (*tokenResponse, error) {
	ttl := s.cfg.AccessTTL
	if req.ttl > 0 {
		ttl = req.ttl
	}
	now := s.now()
	claims, err := s.customClaims(ctx, req) // claims.go
	if err != nil {
		return nil, err
	}
	claims["iss"] = s.cfg.Issuer
	claims["sub"] = req.subject
	claims["aud"] = s.cfg.Audience
	if len(req.audience) > 0 {
		claims["aud"] = req.audience
	}
	exp := accessExpiry(now, ttl)
	claims["iat"] = now.Unix()
	claims["exp"] = exp.Unix()
	claims["jti"] = newID()
	claims["client_id"] = req.client.ID
	req.scope = allowedScope(req.client, req.scope)
	if req.scope != "" {
		claims["scope"] = req.scope
	} else {
		delete(claims, "scope")
	}
	if req.family != "" {
		claims["sid"] = req.family
	} else {
		delete(claims, "sid")
	}
	at, err := s.sign(ctx, claims)
	if err != nil {
		return nil, fmt.Errorf("sign access token: %w", err)
	}
	s.metrics.issued.WithLabelValues(req.grant).Inc()
	resp := &tokenResponse{AccessToken: at, TokenType: "Bearer", Scope: req.scope, expires: exp}
	resp.stamp(now)
	return resp, nil
}

// newID returns 128 random bits, base64url: family IDs and jti.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
