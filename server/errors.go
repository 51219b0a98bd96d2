package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/store"
)

// Error is an OAuth 2.0 error response (RFC 6749 §5.2). Handlers return
// it; only writeError turns it into HTTP.
type Error struct {
	Status      int
	Code        string // one of the codes of internal/oauth
	Description string
	// RetryAfter, if positive, is sent as the Retry-After header (seconds).
	RetryAfter int
	// Challenge, if set, is sent as WWW-Authenticate.
	Challenge string
	// Allow, if set, is sent as the Allow header of a 405 (RFC 9110 §15.5.6).
	Allow string
}

func (e *Error) Error() string {
	if e.Description == "" {
		return "oauth: " + e.Code
	}
	return "oauth: " + e.Code + ": " + e.Description
}

func errInvalidRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: oauth.InvalidRequest, Description: desc}
}

func errInvalidGrant(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: oauth.InvalidGrant, Description: desc}
}

func errInvalidClient(basic bool) *Error {
	e := &Error{Status: http.StatusUnauthorized, Code: oauth.InvalidClient, Description: "client authentication failed"}
	if basic {
		e.Challenge = oauth.BasicChallenge("tokend")
	}
	return e
}

// errUnavailable is 503 temporarily_unavailable (RFC 6749 §4.1.2.1): the
// request was fine, the server cannot serve it now; retry after
// retryAfter seconds.
func errUnavailable(desc string, retryAfter int) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: oauth.TemporarilyUnavailable, Description: desc, RetryAfter: max(retryAfter, 1)}
}

// errThrottled is 429 with Retry-After (RFC 6585 §4): too many failures
// from this source or for this account.
func errThrottled(desc string, retryAfter int) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: oauth.TemporarilyUnavailable, Description: desc, RetryAfter: max(retryAfter, 1)}
}

// storeRetryAfter is the Retry-After, in seconds, of an answer that the
// store could not serve.
const storeRetryAfter = 5

// statusClientGone is the status recorded (nginx's 499, Client Closed
// Request) for a request whose client went away before its answer, and
// codeClientGone its error label in the metrics.
const (
	statusClientGone = 499
	codeClientGone   = "client_closed_request"
)

// writeError answers with err as an RFC 6749 JSON error. Errors that are not
// an *Error are internal: the client sees a generic server_error and the
// details go to the log only. A store that is unavailable (a full disk, a
// database that is down, or slower than Config.StoreTimeout) is 503
// temporarily_unavailable with Retry-After. A request whose client has
// gone (its context cancelled) is none of these, whatever err says: it is
// logged at debug level and recorded as 499 client_closed_request.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		s.log.DebugContext(r.Context(), "client went away", "path", r.URL.Path, "err", err)
		if sw, ok := w.(*statusWriter); ok {
			sw.code = codeClientGone
		}
		w.WriteHeader(statusClientGone)
		return
	}
	var e *Error
	if errors.Is(err, store.ErrUnavailable) {
		s.storeFailed(r.Context(), r.URL.Path, err)
		e = errUnavailable("the store is unavailable; retry later", storeRetryAfter)
	} else if !errors.As(err, &e) {
		s.log.ErrorContext(r.Context(), "internal error", "path", r.URL.Path, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Code: oauth.ServerError, Description: "internal error"}
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.code = e.Code
	}
	if e.Allow != "" {
		w.Header().Set("Allow", e.Allow)
	}
	oauth.WriteError(w, oauth.Answer{Status: e.Status, Challenge: e.Challenge, RetryAfter: e.RetryAfter}, e.Code, e.Description)
}
