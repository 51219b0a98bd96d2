package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tokend/tokend/internal/oauth"
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

	// expires is the access token's exp; ExpiresIn is stamped from it
	// when the answer is written (lifetime.go).
	expires time.Time
	// refreshExpires is when RefreshToken ends, on this server's clock
	// (refreshExpiry).
	refreshExpires time.Time
	// cookie: the client is in cookie mode, so RefreshToken goes in the
	// cookie (cookie.go).
	cookie bool
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(r.Context(), w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	resp.stamp(now)
	if resp.cookie && resp.RefreshToken != "" {
		setRefreshCookie(w, resp.RefreshToken, resp.refreshExpires, now)
		resp.RefreshToken = ""
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
	if err := checkClientOrigin(r, client); err != nil {
		return nil, err
	}
	switch grant {
	case grantClientCredentials, grantRefreshToken, grantPassword:
	default:
		return nil, &Error{Status: http.StatusBadRequest, Code: oauth.UnsupportedGrantType, Description: "unsupported grant_type"}
	}
	if !allowsGrant(client, grant) {
		return nil, &Error{Status: http.StatusBadRequest, Code: oauth.UnauthorizedClient, Description: "grant type not allowed for this client"}
	}
	if !confidential && grant != grantRefreshToken {
		return nil, errInvalidClient(false)
	}
	var resp *tokenResponse
	switch grant {
	case grantClientCredentials:
		resp, err = s.clientCredentials(ctx, client, form)
	case grantRefreshToken:
		var presented string
		if presented, err = presentedRefreshToken(r, client, form); err != nil {
			return nil, err
		}
		resp, err = s.refresh(ctx, client, confidential, s.sourceAddr(r), presented, form)
		if e := (*Error)(nil); client.Cookie && form.Get("refresh_token") == "" && errors.As(err, &e) && e.Code == oauth.InvalidGrant {
			// The cookie's login has ended (reuse, revocation, expiry): the
			// browser drops the dead cookie.
			clearRefreshCookie(w)
		}
	default:
		resp, err = s.password(ctx, client, s.sourceAddr(r), form)
	}
	if err != nil {
		return nil, err
	}
	resp.cookie = client.Cookie
	return resp, nil
}
