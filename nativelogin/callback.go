package nativelogin

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// callbackPath is the path of the redirect URI on the loopback listener.
const callbackPath = "/callback"

// want is what a callback must match: the request's state, and the
// issuer with whether the server promised to send it (RFC 9207).
type want struct {
	state     string
	issuer    string
	issNeeded bool
}

// parseCallback reads the query of the redirect (RFC 6749 §4.1.2) and
// returns the authorization code. In order, it refuses: a query that
// cannot be parsed or repeats a parameter (RFC 6749 §3.1,
// ErrMalformedCallback); a state other than w.state (ErrStateMismatch),
// compared in constant time; an iss other than w.issuer, or none when
// w.issNeeded (RFC 9207 §2.4, ErrIssuerMismatch); an error answer (RFC
// 6749 §4.1.2.1, *AuthorizationError); an answer without a code.
func parseCallback(rawQuery string, w want) (string, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("%w: the query cannot be parsed", ErrMalformedCallback)
	}
	for k, v := range q {
		if len(v) > 1 {
			return "", fmt.Errorf("%w: parameter %q repeated", ErrMalformedCallback, k)
		}
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(w.state)) != 1 {
		return "", ErrStateMismatch
	}
	iss, hasIss := q["iss"]
	switch {
	case hasIss && iss[0] != w.issuer:
		return "", fmt.Errorf("%w: the callback's iss names another issuer", ErrIssuerMismatch)
	case !hasIss && w.issNeeded:
		return "", fmt.Errorf("%w: the callback has no iss although the server sends it (RFC 9207)", ErrIssuerMismatch)
	}
	if code := q.Get("error"); code != "" {
		return "", &AuthorizationError{Code: code, Description: q.Get("error_description"), URI: q.Get("error_uri")}
	}
	code := q.Get("code")
	if code == "" {
		return "", fmt.Errorf("%w: neither code nor error", ErrMalformedCallback)
	}
	return code, nil
}

// callback is the outcome of the first callback request.
type callback struct {
	code string
	err  error
}

// callbackHandler serves the redirect URI. The first GET of callbackPath
// on the expected host is parsed and its outcome sent on done (capacity
// 1, so the handler never waits for Login); every later request is
// answered and ignored.
type callbackHandler struct {
	host string // host:port of the redirect URI
	want want
	once sync.Once
	done chan callback
}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Connection", "close")
	// Another Host is a page of another origin reaching the port through
	// DNS rebinding; it must not end the login.
	if r.URL.Path != callbackPath || r.Host != h.host {
		http.Error(w, "Not found.", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	first := false
	var cb callback
	h.once.Do(func() {
		first = true
		cb.code, cb.err = parseCallback(r.URL.RawQuery, h.want)
	})
	switch {
	case !first:
		http.Error(w, "This login has already finished. You can close this tab.", http.StatusConflict)
	case cb.err != nil:
		http.Error(w, "The login failed. Return to the application for details. You can close this tab.", http.StatusBadRequest)
	default:
		_, _ = fmt.Fprintln(w, "Login complete. You can close this tab and return to the application.")
	}
	if first {
		h.done <- cb
	}
}
