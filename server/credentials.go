package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/tokend/tokend/server/throttle"
	"github.com/tokend/tokend/store"
)

// errBadPassword is the answer to a wrong username or password, whether
// the password grant or the login page asked: invalid_grant (RFC 6749
// §5.2), saying nothing of which part was wrong.
var errBadPassword = errInvalidGrant("invalid username or password")

// checkCredentials checks a user's username and password for the
// password grant and the login page alike: one throttle.Check from src
// for the username (refused with 429 while locked, counted if the
// password is wrong), then Config.Authenticate, admitted by the hashing
// gate. It returns the subject and, for a built-in user, the user record
// checked; errBadPassword for wrong credentials; a 429 or 503 *Error to
// retry later; errGone if the client went away.
func (s *Server) checkCredentials(ctx context.Context, src netip.Addr, user, pass string) (string, *store.User, error) {
	chk, wait := s.thr.Begin(ctx, throttle.Password, src, user, s.now())
	if wait > 0 {
		return "", nil, errThrottledFor(wait)
	}
	res := throttle.Unfinished // also if Authenticate panics
	defer func() { chk.End(ctx, res, s.now()) }()
	sub, checked, err := s.authenticate(ctx, user, pass)
	switch {
	case ctx.Err() != nil:
		// The client is gone, whether it waited for hashing memory or its
		// check ran to the end: nothing is written for it.
		return "", nil, errGone()
	case errors.Is(err, ErrBadCredentials):
		res = throttle.Failed
		return "", nil, errBadPassword
	case err != nil:
		return "", nil, fmt.Errorf("authenticate: %w", err)
	}
	res = throttle.OK
	return sub, checked, nil
}
