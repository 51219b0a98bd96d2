package server

import (
	"context"
	"net/http"

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
	switch grant {
	case grantClientCredentials:
		return s.clientCredentials(ctx, client, form)
	case grantRefreshToken:
		return s.refresh(ctx, client, confidential, s.sourceAddr(r), form)
	default:
		return s.password(ctx, client, s.sourceAddr(r), form)
	}
}
