package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/tokend/tokend/store"
)

// Grant types.
const (
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"
	grantPassword          = "password"
)

// tokenResponse is a successful token answer (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(r.Context(), w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(ctx context.Context, w http.ResponseWriter, r *http.Request) (*tokenResponse, error) {
	form, err := readForm(w, r)
	if err != nil {
		return nil, err
	}
	grant := form.Get("grant_type")
	if grant == "" {
		return nil, errInvalidRequest("missing grant_type")
	}
	client, confidential, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		return nil, err
	}
	if err := s.lim.allow(client.ID); err != nil {
		return nil, err
	}
	switch grant {
	case grantClientCredentials, grantRefreshToken, grantPassword:
	default:
		return nil, &Error{Status: http.StatusBadRequest, Code: codeUnsupportedGrantType, Description: "unsupported grant_type"}
	}
	if !allowsGrant(client, grant) {
		return nil, &Error{Status: http.StatusBadRequest, Code: codeUnauthorizedClient, Description: "grant type not allowed for this client"}
	}
	if !confidential && grant != grantRefreshToken {
		return nil, errInvalidClient(false)
	}
	switch grant {
	case grantClientCredentials:
		return s.clientCredentials(ctx, client, form)
	case grantRefreshToken:
		return s.refresh(ctx, client, form)
	default:
		return s.password(ctx, client, form)
	}
}

func (s *Server) clientCredentials(ctx context.Context, c store.Client, form url.Values) (*tokenResponse, error) {
	scope, err := requestedScope(form, c.Scopes)
	if err != nil {
		return nil, err
	}
	return s.issue(ctx, issueRequest{client: c, subject: c.ID, scope: scope, grant: grantClientCredentials})
}

func (s *Server) password(ctx context.Context, c store.Client, form url.Values) (*tokenResponse, error) {
	user, pass := form.Get("username"), form.Get("password")
	if user == "" || pass == "" {
		return nil, errInvalidRequest("missing username or password")
	}
	scope, err := requestedScope(form, c.Scopes)
	if err != nil {
		return nil, err
	}
	sub, err := s.cfg.Authenticate(ctx, user, pass)
	if errors.Is(err, ErrBadCredentials) {
		return nil, errInvalidGrant("invalid username or password")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	resp, _, err := s.login(ctx, issueRequest{client: c, subject: sub, scope: scope, grant: grantPassword})
	return resp, err
}

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
