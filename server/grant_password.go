package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/tokend/tokend/store"
)

// password is the resource owner password credentials grant (RFC 6749
// §4.3): it starts a login.
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
	if ctx.Err() != nil {
		// The client is gone, whether it waited for hashing memory or its
		// check ran to the end: no session is written for it.
		return nil, errGone()
	}
	if errors.Is(err, ErrBadCredentials) {
		return nil, errInvalidGrant("invalid username or password")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	resp, _, err := s.login(ctx, issueRequest{client: c, subject: sub, scope: scope, grant: grantPassword})
	return resp, err
}
