package server

import (
	"context"
)

// clientCredentials is the client_credentials grant (RFC 6749 §4.4): a
// token for the client itself, without a refresh token.
func (s *Server) clientCredentials(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	c := req.client
	scope, err := requestedScope(req.form, c)
	if err != nil {
		return nil, err
	}
	return s.issue(ctx, issueRequest{client: c, subject: c.ID, scope: scope, grant: grantClientCredentials})
}
