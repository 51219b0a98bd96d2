package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Error is an OAuth 2.0 error response (RFC 6749 §5.2). Handlers return
// it; only writeError turns it into HTTP.
type Error struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// RetryAfter, if positive, is sent as the Retry-After header (seconds).
	RetryAfter int `json:"-"`
	// Challenge, if set, is sent as WWW-Authenticate.
	Challenge string `json:"-"`
}

func (e *Error) Error() string {
	if e.Description == "" {
		return "oauth: " + e.Code
	}
	return "oauth: " + e.Code + ": " + e.Description
}

// The error codes of RFC 6749 §5.2, RFC 7009 and RFC 6750.
const (
	codeInvalidRequest       = "invalid_request"
	codeInvalidClient        = "invalid_client"
	codeInvalidGrant         = "invalid_grant"
	codeUnauthorizedClient   = "unauthorized_client"
	codeUnsupportedGrantType = "unsupported_grant_type"
	codeInvalidScope         = "invalid_scope"
	codeServerError          = "server_error"
	codeUnsupportedTokenType = "unsupported_token_type"
	codeSlowDown             = "slow_down"
	codeNotFound             = "not_found"
	codeAccessDenied         = "access_denied"
)

func errInvalidRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: codeInvalidRequest, Description: desc}
}

func errInvalidGrant(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: codeInvalidGrant, Description: desc}
}

func errInvalidClient(basic bool) *Error {
	e := &Error{Status: http.StatusUnauthorized, Code: codeInvalidClient, Description: "client authentication failed"}
	if basic {
		e.Challenge = `Basic realm="tokend"`
	}
	return e
}

// writeError answers with err as an RFC 6749 JSON error. Errors that are not
// an *Error are internal: the client sees a generic server_error and the
// details go to the log only.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		s.log.ErrorContext(r.Context(), "internal error", "path", r.URL.Path, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Code: codeServerError, Description: "internal error"}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if e.Challenge != "" {
		h.Set("WWW-Authenticate", e.Challenge)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.code = e.Code
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

// writeJSON answers 200 with v. Token material is never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
