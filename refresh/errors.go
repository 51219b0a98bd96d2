package refresh

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokend/tokend/internal/oauth"
)

var (
	// ErrReauthRequired reports a terminal refresh failure: the token
	// endpoint rejected the grant or the client (invalid_grant,
	// invalid_client, or a 400 or 401 answer), so retrying cannot help and
	// the user or operator has to authenticate again. A fetch function may
	// wrap it to mark its own failures as terminal.
	ErrReauthRequired = errors.New("refresh: re-authentication required")

	// ErrClosed is returned by a Source after Close.
	ErrClosed = errors.New("refresh: source closed")

	// ErrTokenRejected is returned, until the next backoff slot, after
	// servers have rejected several tokens in a row soon after they
	// arrived (see Source.Invalidate): a resource server that rejects every
	// token (a wrong audience, keys it does not know) must not make the
	// client fetch a token for every request. It is transient: the Source
	// fetches again at the slot.
	ErrTokenRejected = errors.New("refresh: tokens rejected soon after they were fetched")

	// ErrMalformedToken reports a fetch that returned no usable token: nil,
	// an empty access token, or one that had expired on arrival. It is
	// treated as a transient failure.
	ErrMalformedToken = errors.New("refresh: malformed token")
)

// OAuthError is an error answer from an OAuth endpoint: the token
// endpoint's answer to a fetch (RFC 6749 §5.2), or a WebSocket server's
// refusal of an upgrade or of an in-band renewal (package wsconn). Every
// failed fetch whose error holds an *oauth2.RetrieveError or an
// *OAuthError reaches callers (Token, FetchInfo.Err,
// Options.OnReauthRequired) as an error that holds an *OAuthError, so a
// program can tell the failures apart with errors.As:
//
//	var oe *refresh.OAuthError
//	if errors.As(err, &oe) && oe.Code == "invalid_client" { /* fix the client's credentials */ }
//
// errors.Is(err, ErrReauthRequired) still tells a terminal failure, and
// errors.As still reaches the *oauth2.RetrieveError through Err. A fetch
// function of New or NewRotating may return an *OAuthError itself; its
// Code, Status and RetryAfter are then honoured as a RetrieveError's.
type OAuthError struct {
	// Status is the HTTP status code of the answer; 0 if it came on an
	// open WebSocket (an in-band renewal refused).
	Status int
	// Code is the "error" member (RFC 6749 §5.2, RFC 6750 §3.1), such as
	// "invalid_grant", "invalid_client" or "temporarily_unavailable"; ""
	// if the answer had none (a body that is not an OAuth error).
	Code string
	// Description is "error_description", a human-readable text from the
	// server; "" if none.
	Description string
	// URI is "error_uri", a page about the error; "" if none.
	URI string
	// RetryAfter is the delay the answer's Retry-After header asked for
	// (RFC 9110 §10.2.3: delay-seconds, or an HTTP-date measured against
	// the answer's Date header, else the client's clock), from the moment
	// the answer arrived; 0 if it had none or none that could be read.
	// After a 429 or 503 the clients of this module wait at least this
	// long, and at most their maximum backoff, before they call that
	// endpoint again.
	RetryAfter time.Duration
	// Err is the error the answer was read from (for the token endpoint,
	// the fetch function's error, holding the *oauth2.RetrieveError), or
	// nil.
	Err error
}

// Error describes the answer: its status, code and description, and the
// Retry-After if any. It never holds a token.
func (e *OAuthError) Error() string {
	msg := "oauth error"
	if e.Status != 0 {
		msg += fmt.Sprintf(" %d", e.Status)
	}
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Description != "" {
		msg += fmt.Sprintf(": %q", e.Description)
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return msg
}

// Unwrap returns Err.
func (e *OAuthError) Unwrap() error { return e.Err }

// Throttled reports whether e asks the client to slow down: a 429 or 503
// answer. Its RetryAfter, if any, is honoured.
func (e *OAuthError) Throttled() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// asOAuthError returns the OAuth answer err holds, received at now: an
// *OAuthError in its chain as it is (added false), or one made from an
// *oauth2.RetrieveError and wrapping err (added true); nil if neither.
func asOAuthError(err error, now time.Time) (oe *OAuthError, added bool) {
	if errors.As(err, &oe) {
		return oe, false
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return nil, false
	}
	oe = &OAuthError{Code: re.ErrorCode, Description: re.ErrorDescription, URI: re.ErrorURI, Err: err}
	if re.Response != nil {
		oe.Status = re.Response.StatusCode
		oe.RetryAfter, _ = oauth.RetryAfter(re.Response.Header, now)
	}
	return oe, true
}

// terminal reports whether a fetch error means retrying cannot help: it
// wraps ErrReauthRequired, or the endpoint answered (oe, see asOAuthError)
// a code that oauth.Terminal calls terminal (RFC 6749 §5.2), or 400 or 401
// whatever the code. Transient failures (5xx, 429, timeouts, resets,
// malformed answers) are not terminal.
func terminal(err error, oe *OAuthError) bool {
	if errors.Is(err, ErrReauthRequired) {
		return true
	}
	if oe == nil {
		return false
	}
	if oauth.Terminal(oe.Code) {
		return true
	}
	switch oe.Status {
	case http.StatusBadRequest, http.StatusUnauthorized:
		return true
	}
	return false
}

// retryWait returns the wait after a transient failure whose backoff is
// wait: raised to the Retry-After of a 429 or 503 answer oe, and capped at
// hi.
func retryWait(wait time.Duration, oe *OAuthError, hi time.Duration) time.Duration {
	if oe != nil && oe.Throttled() && oe.RetryAfter > wait {
		wait = min(oe.RetryAfter, hi)
	}
	return wait
}

// unanswered reports whether a transient fetch failure got no answer from
// the authorization server itself: a transport error (a net.Error in its
// chain: connection refused or reset, DNS, TLS, a timeout, including the
// fetch's own), or a 502, 503 or 504 (oe) that carries neither an OAuth
// error body (RFC 6749 §5.2: a JSON object with a string "error") nor a
// Retry-After header, which is what a gateway or load balancer answers for
// a server that is not there. Any other failure was answered by the
// server: its own 5xx, 429 or 408, a malformed token.
func unanswered(err error, oe *OAuthError) bool {
	if oe != nil {
		switch oe.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			return false
		}
		if oe.Code != "" || oe.RetryAfter > 0 {
			return false
		}
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.Header.Get("Retry-After") != "" {
			return false // unreadable, but the server's
		}
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}
