// Package oauth is the OAuth 2.0 vocabulary every tokend package speaks:
// the error codes, the JSON error body (RFC 6749 §5.2) and the
// WWW-Authenticate challenges (RFC 6750 §3, RFC 7617 §2). Codes are
// written here once and turned into HTTP answers by WriteError, so that
// the server, the middleware, the WebSocket handler and the test fake all
// answer alike.
package oauth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Error codes. Each is the value of the "error" member of a JSON error body
// or of a Bearer challenge's error attribute.
const (
	// RFC 6749 §5.2: token endpoint errors.
	InvalidRequest       = "invalid_request"
	InvalidClient        = "invalid_client"
	InvalidGrant         = "invalid_grant"
	UnauthorizedClient   = "unauthorized_client"
	UnsupportedGrantType = "unsupported_grant_type"
	InvalidScope         = "invalid_scope"
	// RFC 6749 §4.1.2.1: errors that the token endpoint shares with the
	// authorization endpoint. ServerError is 500; TemporarilyUnavailable
	// is 503 (and 429 for throttling here), with Retry-After.
	AccessDenied           = "access_denied"
	ServerError            = "server_error"
	TemporarilyUnavailable = "temporarily_unavailable"
	// RFC 6749 §4.1.2.1: errors of the authorization endpoint alone.
	UnsupportedResponseType = "unsupported_response_type"
	// OpenID Connect Core §3.1.2.6: the authorization server would need
	// to show a page, and the request said prompt=none.
	LoginRequired   = "login_required"
	ConsentRequired = "consent_required"
	// RFC 8707 §2: a resource indicator the client may not ask for.
	InvalidTarget = "invalid_target"
	// RFC 7009 §2.2.1: the server does not revoke this type of token.
	UnsupportedTokenType = "unsupported_token_type"
	// RFC 6750 §3.1: resource-server errors.
	InvalidToken      = "invalid_token"
	InsufficientScope = "insufficient_scope"
	// NotFound is tokend's own code for a /v1 resource that does not exist.
	NotFound = "not_found"
)

// Terminal reports whether a token endpoint that answered code has refused
// the grant or the client for good: retrying the same request cannot
// succeed (RFC 6749 §5.2). invalid_grant, invalid_client and
// unauthorized_client are terminal.
func Terminal(code string) bool {
	switch code {
	case InvalidGrant, InvalidClient, UnauthorizedClient:
		return true
	}
	return false
}

// Body is the JSON error body of RFC 6749 §5.2.
type Body struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	URI         string `json:"error_uri,omitempty"`
}

// Answer is everything an error answer carries besides its body.
type Answer struct {
	Status int
	// Challenge, if set, is sent as WWW-Authenticate (see BearerChallenge
	// and BasicChallenge).
	Challenge string
	// RetryAfter, if positive, is sent as Retry-After, in whole seconds
	// (RFC 9110 §10.2.3).
	RetryAfter int
}

// WriteError answers a.Status with a JSON error body of code and desc,
// Cache-Control: no-store (RFC 6749 §5.1), and the challenge and
// Retry-After of a. An empty code leaves "error" out (a bare challenge, as
// RFC 6750 §3.1 asks when no token was sent).
func WriteError(w http.ResponseWriter, a Answer, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if a.Challenge != "" {
		h.Set("WWW-Authenticate", a.Challenge)
	}
	if a.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(a.RetryAfter))
	}
	w.WriteHeader(a.Status)
	if code == "" {
		_ = json.NewEncoder(w).Encode(struct {
			Description string `json:"error_description,omitempty"`
		}{desc})
		return
	}
	_ = json.NewEncoder(w).Encode(Body{Error: code, Description: desc})
}

// BearerChallenge returns a Bearer challenge (RFC 6750 §3): with realm if
// it is not empty, then error, error_description and scope if code is not
// empty. desc and scope must already be in the character set RFC 6750 §3
// allows (%x20-21 / %x23-5B / %x5D-7E); a character outside it is
// replaced by '?', so no caller can break the header.
func BearerChallenge(realm, code, desc, scope string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	attr := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quotable(value))
		b.WriteString(`"`)
		sep = ", "
	}
	if realm != "" {
		attr("realm", realm)
	}
	if code != "" {
		attr("error", code)
		if desc != "" {
			attr("error_description", desc)
		}
		if scope != "" {
			attr("scope", scope)
		}
	}
	return b.String()
}

// BasicChallenge returns the Basic challenge (RFC 7617 §2) a token
// endpoint sends with 401 invalid_client (RFC 6749 §5.2).
func BasicChallenge(realm string) string {
	return `Basic realm="` + quotable(realm) + `"`
}

// quotable replaces the characters a quoted attribute of RFC 6750 §3 may
// not hold with '?'.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, s)
}
