package server

import (
	"net/http"

	"github.com/tokend/tokend/internal/oauth"
)

// serveUnrouted answers a request no route takes, which the mux answers
// itself with a plain-text 404, or 405 with Allow (RFC 9110 §15.5.6), as
// an RFC 6749 §5.2 JSON error like every other error: 404 not_found, 405
// invalid_request. Redirects (a path the mux cleans) pass through.
func serveUnrouted(h http.Handler, w http.ResponseWriter, r *http.Request) {
	h.ServeHTTP(&unroutedWriter{ResponseWriter: w}, r)
}

type unroutedWriter struct {
	http.ResponseWriter
	replaced bool // the mux's body is dropped
}

func (u *unroutedWriter) WriteHeader(code int) {
	switch code {
	case http.StatusNotFound:
		u.replace(code, oauth.NotFound, "no such endpoint")
	case http.StatusMethodNotAllowed:
		u.replace(code, oauth.InvalidRequest, "method not allowed; Allow names the methods")
	default:
		u.ResponseWriter.WriteHeader(code)
	}
}

func (u *unroutedWriter) replace(code int, errCode, desc string) {
	u.replaced = true
	u.Header().Del("X-Content-Type-Options")
	oauth.WriteError(u.ResponseWriter, oauth.Answer{Status: code}, errCode, desc)
}

func (u *unroutedWriter) Write(p []byte) (int, error) {
	if u.replaced {
		return len(p), nil
	}
	return u.ResponseWriter.Write(p)
}
