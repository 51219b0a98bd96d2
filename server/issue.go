package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokend/tokend/store"
)

// login starts a family and issues its first token pair. It returns the
// family's ID too.
func (s *Server) login(ctx context.Context, req issueRequest) (*tokenResponse, string, error) {
	now := s.now()
	rt := newRefreshToken()
	f := store.Family{
		ID:            newID(),
		ClientID:      req.client.ID,
		Subject:       req.subject,
		Scope:         req.scope,
		Claims:        req.claims,
		AccessTTL:     req.ttl,
		CreatedAt:     now,
		LastUsedAt:    now,
		IdleExpiresAt: now.Add(s.cfg.RefreshIdle),
		ExpiresAt:     now.Add(s.cfg.RefreshAbsolute),
	}
	if f.IdleExpiresAt.After(f.ExpiresAt) {
		f.IdleExpiresAt = f.ExpiresAt
	}
	first := store.RefreshToken{Hash: hashToken(rt), FamilyID: f.ID, IssuedAt: now}
	if err := s.store.CreateFamily(ctx, f, first); err != nil {
		return nil, "", fmt.Errorf("create family: %w", err)
	}
	req.family = f.ID
	resp, err := s.issue(ctx, req)
	if err != nil {
		return nil, "", err
	}
	resp.RefreshToken = rt
	return resp, f.ID, nil
}

// issueRequest is what an access token is issued for.
type issueRequest struct {
	client  store.Client
	subject string
	scope   string
	grant   string
	family  string        // sid; empty without a refresh token
	claims  []byte        // custom claims, a JSON object
	ttl     time.Duration // overrides Config.AccessTTL if positive
}

// issue signs an access token (RFC 9068).
func (s *Server) issue(ctx context.Context, req issueRequest) (*tokenResponse, error) {
	ttl := s.cfg.AccessTTL
	if req.ttl > 0 {
		ttl = req.ttl
	}
	now := s.now()
	claims := map[string]any{}
	if len(req.claims) > 0 {
		if err := json.Unmarshal(req.claims, &claims); err != nil {
			return nil, fmt.Errorf("custom claims: %w", err)
		}
	}
	if s.cfg.Claims != nil {
		extra, err := s.cfg.Claims(ctx, ClaimsRequest{ClientID: req.client.ID, Subject: req.subject, Scope: req.scope, Grant: req.grant})
		if err != nil {
			return nil, fmt.Errorf("claims hook: %w", err)
		}
		for k, v := range extra {
			claims[k] = v
		}
	}
	claims["iss"] = s.cfg.Issuer
	claims["sub"] = req.subject
	claims["aud"] = s.cfg.Audience
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(ttl).Unix()
	claims["jti"] = newID()
	claims["client_id"] = req.client.ID
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
	at, err := s.cfg.Signer.Sign(claims)
	if err != nil {
		return nil, fmt.Errorf("sign access token: %w", err)
	}
	s.metrics.issued.WithLabelValues(req.grant).Inc()
	return &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second), Scope: req.scope}, nil
}

// newID returns 128 random bits, base64url: family IDs and jti.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
