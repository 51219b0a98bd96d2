package nativelogin

import (
	"errors"
	"fmt"
)

var (
	// ErrStateMismatch reports a callback whose state parameter is missing
	// or differs from the one the authorization request carried (RFC 6749
	// §10.12, cross-site request forgery). No code is exchanged.
	ErrStateMismatch = errors.New("nativelogin: callback state does not match the request")

	// ErrIssuerMismatch reports an issuer other than Config.Issuer: in the
	// discovery document (OpenID Connect Discovery 1.0 §4.3, RFC 8414
	// §3.3), in the callback's iss parameter (RFC 9207 §2.4; also a
	// callback without iss when the metadata promises it), or in the ID
	// token. No code is exchanged after a callback mismatch.
	ErrIssuerMismatch = errors.New("nativelogin: issuer does not match")

	// ErrTimeout reports that no callback came within Config.Timeout.
	ErrTimeout = errors.New("nativelogin: no callback from the browser in time")

	// ErrMalformedCallback reports a callback that is neither a code nor
	// an error answer (RFC 6749 §4.1.2), or that repeats a parameter
	// (RFC 6749 §3.1).
	ErrMalformedCallback = errors.New("nativelogin: malformed callback")

	// ErrIDToken reports an ID token that is missing although the openid
	// scope was asked for, that cannot be read, or whose iss, aud, azp or
	// nonce claim does not match the request (OpenID Connect Core 1.0
	// §3.1.3.7).
	ErrIDToken = errors.New("nativelogin: ID token rejected")

	// ErrNoBrowser reports that the default OpenBrowser found no browser
	// to start (no graphical session, or an unknown operating system).
	// Login then prints the URL to Config.Prompt.
	ErrNoBrowser = errors.New("nativelogin: no browser to open")
)

// AuthorizationError is the authorization server's error answer on the
// redirect URI (RFC 6749 §4.1.2.1), such as access_denied when the user
// declined. errors.As gives it:
//
//	var ae *nativelogin.AuthorizationError
//	if errors.As(err, &ae) && ae.Code == "access_denied" { /* the user said no */ }
type AuthorizationError struct {
	// Code is the "error" parameter: invalid_request, unauthorized_client,
	// access_denied, unsupported_response_type, invalid_scope,
	// server_error, temporarily_unavailable, or an extension such as
	// OpenID Connect's login_required (OpenID Connect Core 1.0 §3.1.2.6).
	Code string
	// Description is "error_description", a human-readable text; "" if none.
	Description string
	// URI is "error_uri", a page about the error; "" if none.
	URI string
}

// Error returns the code and the description, quoted so that whatever
// the browser carried cannot forge lines in a log.
func (e *AuthorizationError) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("nativelogin: authorization refused: %q", e.Code)
	}
	return fmt.Sprintf("nativelogin: authorization refused: %q: %q", e.Code, e.Description)
}
