package server

import (
	"context"
)

// password is the resource owner password credentials grant (RFC 6749
// §4.3): it logs a user in (checkCredentials) and starts a family.
func (s *Server) password(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	c, form := req.client, req.form
	user, pass := form.Get("username"), form.Get("password")
	if user == "" || pass == "" {
		return nil, errInvalidRequest("missing username or password")
	}
	if err := checkParam("parameter", "username", user); err != nil {
		return nil, err
	}
	scope, err := requestedScope(form, c)
	if err != nil {
		return nil, err
	}
	sub, checked, err := s.checkCredentials(ctx, req.source, user, pass)
	if err != nil {
		return nil, err
	}
	start := issueRequest{client: c, subject: sub, scope: scope, grant: grantPassword}
	start.user = checked
	resp, _, err := s.startFamily(ctx, start)
	return resp, err
}
