package server

import (
	"context"
	"net/url"

	"github.com/tokend/tokend/store"
)

// clientCredentials is the client_credentials grant (RFC 6749 §4.4): a
// token for the client itself, without a refresh token.
func (s *Server) clientCredentials(ctx context.Context, c store.Client, form url.Values) (*tokenResponse, error) {
	scope, err := requestedScope(form, c)
	if err != nil {
		return nil, err
	}
	return s.issue(ctx, issueRequest{client: c, subject: c.ID, scope: scope, grant: grantClientCredentials})
}
