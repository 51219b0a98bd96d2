package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/verify"
)

// accessClaims are the parts of a verified access token introspection and
// revocation use.
type accessClaims struct {
	sid, clientID, subject, scope, jti string
	aud                                []string
	exp, iat                           int64
}

// newAccessVerifier returns a verifier of this server's own access tokens
// that reads the JWKS from the Signer in memory instead of over HTTP.
func (s *Server) newAccessVerifier() *verify.Verifier {
	jwks := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(s.cfg.Signer.JWKS())), Request: r}, nil
	})
	return verify.New(s.cfg.Issuer, &verify.Options{
		Audience:   s.cfg.Audience,
		JWKSURL:    "http://tokend.internal/jwks.json",
		HTTPClient: &http.Client{Transport: jwks},
		// Reading the JWKS costs nothing here: pick up a rotated key at once.
		MinRefresh: time.Nanosecond,
		Now:        s.now,
		Logger:     s.log,
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (s *Server) verifyAccess(ctx context.Context, tok string) (accessClaims, error) {
	c, err := s.access.Verify(ctx, tok)
	if err != nil {
		return accessClaims{}, err
	}
	sid, _ := c.Extra["sid"].(string)
	return accessClaims{sid: sid, clientID: c.ClientID, subject: c.Subject, scope: c.Scope, jti: c.ID,
		aud: c.Audience, exp: c.Expiry.Unix(), iat: c.IssuedAt.Unix()}, nil
}

// handleIntrospect implements RFC 7662 for the calling client's own tokens;
// any other token, valid or not, is reported only as inactive.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	resp, err := s.introspect(r.Context(), w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

var inactive = map[string]any{"active": false}

func (s *Server) introspect(ctx context.Context, w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	form, err := readForm(w, r)
	if err != nil {
		return nil, err
	}
	client, confidential, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		return nil, err
	}
	if !confidential {
		return nil, errInvalidClient(false)
	}
	tok := form.Get("token")
	if tok == "" {
		return nil, errInvalidRequest("missing token")
	}
	now := s.now()
	if strings.HasPrefix(tok, refreshPrefix) {
		if !validRefreshToken(tok) {
			return inactive, nil
		}
		rt, f, err := s.store.GetRefreshToken(ctx, hashToken(tok))
		if errors.Is(err, store.ErrNotFound) {
			return inactive, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get refresh token: %w", err)
		}
		if f.ClientID != client.ID || !f.Active(now) || !rt.RotatedAt.IsZero() {
			return inactive, nil
		}
		exp := f.IdleExpiresAt
		if f.ExpiresAt.Before(exp) {
			exp = f.ExpiresAt
		}
		return map[string]any{"active": true, "token_type": "refresh_token", "client_id": f.ClientID,
			"sub": f.Subject, "scope": f.Scope, "iat": rt.IssuedAt.Unix(), "exp": exp.Unix(), "iss": s.cfg.Issuer}, nil
	}
	c, err := s.verifyAccess(ctx, tok)
	// RFC 7662 §2.2: a token past its exp is inactive. The verifier allows
	// clock skew; the issuer judges its own tokens on its own clock.
	if err != nil || c.clientID != client.ID || !now.Before(time.Unix(c.exp, 0)) {
		return inactive, nil
	}
	if c.sid == "" {
		revoked, err := s.store.AccessTokenRevoked(ctx, c.jti)
		if err != nil {
			return nil, fmt.Errorf("access-token deny-list: %w", err)
		}
		if revoked {
			return inactive, nil
		}
	} else {
		f, err := s.store.GetFamily(ctx, c.sid)
		if errors.Is(err, store.ErrNotFound) || err == nil && !f.RevokedAt.IsZero() {
			return inactive, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get family: %w", err)
		}
	}
	out := map[string]any{"active": true, "token_type": "access_token", "client_id": c.clientID,
		"sub": c.subject, "exp": c.exp, "iat": c.iat, "jti": c.jti, "iss": s.cfg.Issuer, "aud": c.aud}
	if c.scope != "" {
		out["scope"] = c.scope
	}
	return out, nil
}
