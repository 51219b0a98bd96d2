package server

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/store"
)

// The token endpoint (RFC 6749 §3.2) is one pipeline:
//
//  1. readTokenRequest reads a request once into a tokenRequest: the form,
//     the client and how it authenticated, the source address, and for a
//     grant that redeems a refresh token the token it presents (the
//     parameter, or cookie mode's cookie); it checks the client's origin,
//     that the grant exists and is allowed for the client, and that a
//     public client uses only a grant open to public clients.
//  2. The grant its grant_type names in the table Server.grants answers
//     with a tokenResponse or an error, and writes nothing.
//  3. handleToken writes the answer, applying cookie mode (cookie.go).
//
// Adding a grant is one file with its answer function and one entry in
// the table (newGrants).

// Grant types (RFC 6749 §4.3, §4.4, §6).
const (
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"
	grantPassword          = "password"
)

// A grant answers the token requests of one grant_type.
type grant struct {
	// name is the grant_type.
	name string
	// public: a public client may use it (of tokend's grants, the
	// authorization code grant, whose PKCE proves the client instead of a
	// secret, RFC 7636 §1, and the refresh_token grant: RFC 6749 §2.1,
	// §10.1).
	public bool
	// redeemsRefreshToken: the request presents a refresh token, as the
	// refresh_token parameter or in cookie mode as the cookie.
	redeemsRefreshToken bool
	// answer issues the tokens of a request checked by readTokenRequest.
	answer func(ctx context.Context, req *tokenRequest) (*tokenResponse, error)
}

// newGrants is the table of the token endpoint's grants, in the order the
// metadata lists them (RFC 8414 grant_types_supported).
func (s *Server) newGrants() []grant {
	return []grant{
		{name: grantAuthorizationCode, public: true, answer: s.authorizationCode},
		{name: grantClientCredentials, answer: s.clientCredentials},
		{name: grantRefreshToken, public: true, redeemsRefreshToken: true, answer: s.refresh},
		{name: grantPassword, answer: s.password},
	}
}

// grantNamed returns the grant of grant_type name, if tokend has it.
func (s *Server) grantNamed(name string) (grant, bool) {
	for _, g := range s.grants {
		if g.name == name {
			return g, true
		}
	}
	return grant{}, false
}

// grantTypes lists the grant_type of every grant, in table order.
func (s *Server) grantTypes() []string {
	out := make([]string, len(s.grants))
	for i, g := range s.grants {
		out[i] = g.name
	}
	return out
}

// tokenRequest is a token request as readTokenRequest read and checked it.
type tokenRequest struct {
	form         url.Values
	client       store.Client
	confidential bool       // the client authenticated with a secret
	source       netip.Addr // the request's source address (clientip.go)
	// refreshToken is the refresh token presented to a grant that redeems
	// one; fromCookie says it came from cookie mode's cookie.
	refreshToken string
	fromCookie   bool
}

// tokenResponse is a successful token answer (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	// IDToken is the OpenID Connect ID token of a code redeemed for the
	// openid scope (OpenID Connect Core §3.1.3.3).
	IDToken string `json:"id_token,omitempty"`

	// expires is the access token's exp; ExpiresIn is stamped from it
	// when the answer is written (lifetime.go).
	expires time.Time
	// refreshExpires is when RefreshToken ends, on this server's clock
	// (refreshExpiry).
	refreshExpires time.Time
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	req, g, err := s.readTokenRequest(r)
	var resp *tokenResponse
	if err == nil {
		resp, err = g.answer(r.Context(), req)
	}
	if err != nil {
		if e := (*Error)(nil); req != nil && req.fromCookie && errors.As(err, &e) && e.Code == oauth.InvalidGrant {
			// The cookie's family has ended (reuse, revocation, expiry): the
			// browser drops the dead cookie.
			clearRefreshCookie(w)
		}
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	resp.stamp(now)
	if req.client.Cookie && resp.RefreshToken != "" {
		setRefreshCookie(w, resp.RefreshToken, resp.refreshExpires, now)
		resp.RefreshToken = ""
	}
	writeJSON(w, http.StatusOK, resp)
}

// readTokenRequest reads and checks a token request (step 1 above). The
// error is the answer to give: invalid_request, invalid_client,
// unsupported_grant_type or unauthorized_client (RFC 6749 §5.2), a
// throttle's 429, or a store failure.
func (s *Server) readTokenRequest(r *http.Request) (*tokenRequest, grant, error) {
	form, err := readForm(r)
	if err != nil {
		return nil, grant{}, err
	}
	name := form.Get("grant_type")
	if name == "" {
		return nil, grant{}, errInvalidRequest("missing grant_type")
	}
	client, confidential, err := s.authenticateClient(r.Context(), r, form)
	if err != nil {
		return nil, grant{}, err
	}
	if err := s.checkClientOrigin(r, client); err != nil {
		return nil, grant{}, err
	}
	g, ok := s.grantNamed(name)
	if !ok {
		return nil, grant{}, &Error{Status: http.StatusBadRequest, Code: oauth.UnsupportedGrantType, Description: "unsupported grant_type"}
	}
	if !allowsGrant(client, name) {
		return nil, grant{}, &Error{Status: http.StatusBadRequest, Code: oauth.UnauthorizedClient, Description: "grant type not allowed for this client"}
	}
	if !confidential && !g.public {
		return nil, grant{}, errInvalidClient(false)
	}
	req := &tokenRequest{form: form, client: client, confidential: confidential, source: s.sourceAddr(r)}
	if g.redeemsRefreshToken {
		if req.refreshToken, req.fromCookie, err = presentedRefreshToken(r, client, form); err != nil {
			return nil, grant{}, err
		}
	}
	return req, g, nil
}
