package refresh

import (
	"errors"
	"net/http"

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

// terminal reports whether a fetch error means retrying cannot help: it
// wraps ErrReauthRequired, or the token endpoint answered a code that
// oauth.Terminal calls terminal (RFC 6749 §5.2), or it answered 400 or 401
// whatever the code. Transient failures (5xx, 429, timeouts, resets,
// malformed answers) are not terminal.
func terminal(err error) bool {
	if errors.Is(err, ErrReauthRequired) {
		return true
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return false
	}
	if oauth.Terminal(re.ErrorCode) {
		return true
	}
	if re.Response == nil {
		return false
	}
	switch re.Response.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized:
		return true
	}
	return false
}
