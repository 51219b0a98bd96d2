package wsconn

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokend/tokend/internal/bearer"
	"github.com/tokend/tokend/internal/oauth"
	"github.com/tokend/tokend/refresh"
)

// maxRefusalBody bounds how much of a refused upgrade's body is read
// (coder/websocket keeps 1 KiB of it).
const maxRefusalBody = 1 << 10

// refusal returns the OAuth error of an upgrade answered resp (not 101),
// received at now, wrapping err: the status, the code and description of
// its JSON body (RFC 6749 §5.2) or else of its Bearer challenge (RFC 6750
// §3), and its Retry-After.
func refusal(resp *http.Response, now time.Time, err error) *refresh.OAuthError {
	oe := &refresh.OAuthError{Status: resp.StatusCode, Err: err}
	oe.RetryAfter, _ = oauth.RetryAfter(resp.Header, now)
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalBody))
		if body, ok := oauth.ParseBody(b); ok {
			oe.Code, oe.Description, oe.URI = body.Error, body.Description, body.URI
			return oe
		}
	}
	oe.Code = bearer.BearerError(resp.Header.Values("WWW-Authenticate"))
	return oe
}

// redactedError hides a secret in the text of err; errors.Is and errors.As
// still reach err.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact keeps secret out of err's text: a dial error names the URL, which
// carries the token when it goes in a query parameter.
func redact(err error, secret string) error {
	if secret == "" {
		return err
	}
	msg := err.Error()
	for _, s := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
		msg = strings.ReplaceAll(msg, s, "[token]")
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
