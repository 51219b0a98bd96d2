package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokend/tokend/server/throttle"
)

// password is the resource owner password credentials grant (RFC 6749
// §4.3): it logs a user in and starts a family. Each check is a
// throttle.Check from src for the username: refused with 429 while
// locked, counted if the password is wrong.
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
	chk, wait := s.thr.Begin(ctx, throttle.Password, req.source, user, s.now())
	if wait > 0 {
		return nil, errThrottledFor(wait)
	}
	res := throttle.Unfinished // also if Authenticate panics
	defer func() { chk.End(ctx, res, s.now()) }()
	sub, checked, err := s.authenticate(ctx, user, pass)
	switch {
	case ctx.Err() != nil:
		// The client is gone, whether it waited for hashing memory or its
		// check ran to the end: no family is written for it.
		return nil, errGone()
	case errors.Is(err, ErrBadCredentials):
		res = throttle.Failed
		return nil, errInvalidGrant("invalid username or password")
	case err != nil:
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	res = throttle.OK
	start := issueRequest{client: c, subject: sub, scope: scope, grant: grantPassword}
	start.user = checked
	resp, _, err := s.startFamily(ctx, start)
	return resp, err
}
