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
